"""The webhooks app's django-q2 schedule, created (or updated) after every `migrate`."""

from django.conf import settings
from django_q.models import Schedule

RECONCILE_WEBHOOKS = "frontservice.reconcile-webhooks"


def ensure_schedules(**kwargs) -> None:
    Schedule.objects.update_or_create(
        name=RECONCILE_WEBHOOKS,
        defaults={
            "func": "webhooks.tasks.reconcile_webhooks_task",
            "schedule_type": Schedule.MINUTES,
            "minutes": settings.RECONCILE_EVERY_MINUTES,
            "repeats": -1,
        },
    )
