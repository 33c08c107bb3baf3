"""django-q2 schedules, created (or updated) after every `migrate` by the apps that need them."""

from django.conf import settings
from django_q.models import Schedule


def ensure_minutely_schedule(*, name: str, func: str) -> None:
    """The schedule `name` runs `func` every RECONCILE_EVERY_MINUTES, for ever; one of it."""
    Schedule.objects.update_or_create(
        name=name,
        defaults={
            "func": func,
            "schedule_type": Schedule.MINUTES,
            "minutes": settings.RECONCILE_EVERY_MINUTES,
            "repeats": -1,
        },
    )
