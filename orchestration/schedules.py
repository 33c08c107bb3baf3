"""django-q2 schedules the worker tier relies on, created (or updated) after every `migrate`."""

from frontservice.schedules import ensure_minutely_schedule

RECONCILE = "frontservice.reconcile"


def ensure_schedules(**kwargs) -> None:
    ensure_minutely_schedule(name=RECONCILE, func="orchestration.tasks.reconcile_task")
