"""The webhooks reconciler runs on a django-q2 schedule of its own that `migrate` creates
(webhooks/schedules.py)."""

from django.core.management import call_command
from django.test import override_settings
from django_q.models import Schedule

from webhooks.schedules import RECONCILE_WEBHOOKS


def test_migrate_creates_the_webhooks_reconciler_schedule(settings):
    schedule = Schedule.objects.get(name=RECONCILE_WEBHOOKS)

    assert schedule.func == "webhooks.tasks.reconcile_webhooks_task"
    assert schedule.schedule_type == Schedule.MINUTES
    assert schedule.minutes == settings.RECONCILE_EVERY_MINUTES
    assert schedule.repeats == -1


def test_migrating_again_keeps_one_webhooks_schedule():
    try:
        with override_settings(RECONCILE_EVERY_MINUTES=3):
            call_command("migrate", verbosity=0)

            assert Schedule.objects.filter(name=RECONCILE_WEBHOOKS).count() == 1
            assert Schedule.objects.get(name=RECONCILE_WEBHOOKS).minutes == 3
    finally:
        # Every test shares the database: the schedules go back to the configured cadence.
        call_command("migrate", verbosity=0)


def test_the_scheduled_task_runs_a_webhooks_pass():
    from webhooks.tasks import reconcile_webhooks_task

    assert reconcile_webhooks_task().endswith(" webhooks enqueued")
