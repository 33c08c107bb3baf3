"""The reconciler runs on a django-q2 schedule that `migrate` creates
(orchestration/schedules.py)."""

from django.core.management import call_command
from django.test import override_settings
from django_q.models import Schedule

from orchestration.schedules import RECONCILE


def test_migrate_creates_the_reconciler_schedule(settings):
    schedule = Schedule.objects.get(name=RECONCILE)

    assert schedule.func == "orchestration.tasks.reconcile_task"
    assert schedule.schedule_type == Schedule.MINUTES
    assert schedule.minutes == settings.RECONCILE_EVERY_MINUTES
    assert schedule.repeats == -1


def test_migrating_again_keeps_one_schedule():
    try:
        with override_settings(RECONCILE_EVERY_MINUTES=3):
            call_command("migrate", verbosity=0)

            assert Schedule.objects.filter(name=RECONCILE).count() == 1
            assert Schedule.objects.get(name=RECONCILE).minutes == 3
    finally:
        # Every test shares the database: the schedules go back to the configured cadence.
        call_command("migrate", verbosity=0)
