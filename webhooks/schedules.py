"""The webhooks app's django-q2 schedule, created (or updated) after every `migrate`."""

from frontservice.schedules import ensure_minutely_schedule

RECONCILE_WEBHOOKS = "frontservice.reconcile-webhooks"


def ensure_schedules(**kwargs) -> None:
    ensure_minutely_schedule(name=RECONCILE_WEBHOOKS, func="webhooks.tasks.reconcile_webhooks_task")
