import os

from django.apps import AppConfig, apps


class OrchestrationConfig(AppConfig):
    name = "orchestration"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from orchestration import staging
        from orchestration.schedules import ensure_schedules

        # The API streams uploads into the staging area; it must exist before the first one.
        staging.ensure_dirs()
        # django-q2 forks its workers, and a PyMongo client must not be used across a fork:
        # the child forgets the clients it inherited and opens its own on first use.
        os.register_at_fork(after_in_child=_forget_inherited_mongo_clients)
        # The reconciler's schedule exists wherever the schema does: after django_q's tables
        # (post_migrate is only sent for apps with models, which this one has not).
        post_migrate.connect(ensure_schedules, sender=apps.get_app_config("django_q"))
        # A finished task is acknowledged by the worker that ran it (see the function).
        from django_q.signals import post_execute_in_worker

        from orchestration.broker import acknowledge_in_worker

        post_execute_in_worker.connect(acknowledge_in_worker, dispatch_uid="fs-ack-in-worker")


def _forget_inherited_mongo_clients() -> None:
    from django.db import connections
    from django_mongodb_backend.base import DatabaseWrapper

    for conn in connections.all(initialized_only=True):
        if isinstance(conn, DatabaseWrapper):
            conn.connection = None
            conn.__dict__.pop("database", None)
    # Dropped, not closed: closing would touch sockets the parent process still uses.
    DatabaseWrapper._connection_pools.clear()
