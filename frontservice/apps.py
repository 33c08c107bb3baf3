"""AppConfigs that give Django's contrib apps and django_q MongoDB primary keys.

MongoDB has no auto-increment, so every model whose app defaults to AutoField needs an app
config with ObjectIdAutoField and migrations generated for it (``MIGRATION_MODULES``).
"""

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


class MongoDjangoQConfig(DjangoQConfig):
    default_auto_field = OBJECT_ID
