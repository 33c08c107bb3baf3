from django.apps import AppConfig, apps


class WebhooksConfig(AppConfig):
    name = "webhooks"
    default_auto_field = "django_mongodb_backend.fields.ObjectIdAutoField"

    def ready(self) -> None:
        # Imported here, as Django asks of receivers: they need the models loaded.
        from django.db.models.signals import post_migrate

        from jobs.signals import job_status_changed
        from webhooks.receivers import enqueue_pending_webhook
        from webhooks.schedules import ensure_schedules

        job_status_changed.connect(enqueue_pending_webhook, dispatch_uid="webhooks-pending")
        # After django_q's tables exist (its schedule model), like the worker tier's schedule.
        post_migrate.connect(
            ensure_schedules,
            sender=apps.get_app_config("django_q"),
            dispatch_uid="webhooks-schedules",
        )
