"""django-q2 schedules the worker tier relies on, created (or updated) after every `migrate`."""

from django.conf import settings
from django_q.models import Schedule

RECONCILE = "frontservice.reconcile"


def ensure_schedules(**kwargs) -> None:
    Schedule.objects.update_or_create(
        name=RECONCILE,
        defaults={
            "func": "orchestration.tasks.reconcile_task",
            "schedule_type": Schedule.MINUTES,
            "minutes": settings.RECONCILE_EVERY_MINUTES,
            "repeats": -1,
        },
    )
