"""django-q2 schedules this service relies on, created (or updated) after every `migrate`."""

from django.conf import settings

RECONCILE = "frontservice.reconcile"


def ensure_schedules(**kwargs) -> None:
    from django_q.models import Schedule

    Schedule.objects.update_or_create(
        name=RECONCILE,
        defaults={
            "func": "orchestration.tasks.reconcile",
            "schedule_type": Schedule.MINUTES,
            "minutes": settings.RECONCILE_EVERY_MINUTES,
            "repeats": -1,
        },
    )
