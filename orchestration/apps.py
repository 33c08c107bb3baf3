from django.apps import AppConfig, apps


class OrchestrationConfig(AppConfig):
    name = "orchestration"

    def ready(self) -> None:
        # Imported here, as Django asks of receivers and of code that needs the models loaded.
        from django.db.models.signals import post_migrate

        from jobs import staging
        from jobs.signals import job_created
        from orchestration.receivers import enqueue_created_job
        from orchestration.schedules import ensure_schedules

        # The API streams uploads into the staging area; it must exist before the first one.
        staging.ensure_dirs()
        job_created.connect(enqueue_created_job, dispatch_uid="orchestration-created")
        # The reconciler's schedule exists wherever the schema does: after django_q's tables
        # (post_migrate is only sent for apps with models, which this one has not).
        post_migrate.connect(
            ensure_schedules,
            sender=apps.get_app_config("django_q"),
            dispatch_uid="orchestration-schedules",
        )
