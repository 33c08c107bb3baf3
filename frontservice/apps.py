"""AppConfigs that give Django's contrib apps, django_q and django-axes MongoDB primary keys.

MongoDB has no auto-increment, so every model whose app defaults to AutoField needs an app
config with ObjectIdAutoField and migrations generated for it (``MIGRATION_MODULES``).
"""

import os

from axes.apps import AppConfig as AxesConfig
from django.contrib.admin.apps import AdminConfig
from django.contrib.auth.apps import AuthConfig
from django.contrib.contenttypes.apps import ContentTypesConfig
from django_q.apps import DjangoQConfig

OBJECT_ID = "django_mongodb_backend.fields.ObjectIdAutoField"


class MongoAdminConfig(AdminConfig):
    default_auto_field = OBJECT_ID


class MongoAuthConfig(AuthConfig):
    default_auto_field = OBJECT_ID


class MongoContentTypesConfig(ContentTypesConfig):
    default_auto_field = OBJECT_ID


class MongoAxesConfig(AxesConfig):
    # django-axes: the admin's failed logins, counted per user and per address.
    default_auto_field = OBJECT_ID


class MongoDjangoQConfig(DjangoQConfig):
    default_auto_field = OBJECT_ID

    def ready(self) -> None:
        super().ready()
        # Imported here: the broker module needs the app registry (django_q's models).
        from django_q.signals import post_execute_in_worker

        from frontservice.broker import acknowledge_in_worker, forget_inherited_mongo_clients

        # django-q2 forks its workers, and a PyMongo client must not be used across a fork:
        # the child forgets the clients it inherited and opens its own on first use.
        os.register_at_fork(after_in_child=forget_inherited_mongo_clients)
        # A finished task is acknowledged by the worker that ran it (see the function).
        post_execute_in_worker.connect(acknowledge_in_worker, dispatch_uid="fs-ack-in-worker")
