"""TTL index on IdempotencyKey.expires_at: MongoDB removes a key once it has expired.

Django's Index cannot express expireAfterSeconds, and django-mongodb-backend does not create TTL
indexes, so this migration creates it with PyMongo.
"""

from django.db import migrations

INDEX_NAME = "idempotency_expires_ttl"


def create_ttl_index(apps, schema_editor):
    model = apps.get_model("jobs", "IdempotencyKey")
    collection = schema_editor.connection.get_collection(model._meta.db_table)
    collection.create_index("expires_at", name=INDEX_NAME, expireAfterSeconds=0)


def drop_ttl_index(apps, schema_editor):
    model = apps.get_model("jobs", "IdempotencyKey")
    schema_editor.connection.get_collection(model._meta.db_table).drop_index(INDEX_NAME)


class Migration(migrations.Migration):
    dependencies = [("jobs", "0002_job_attempts_job_checked_at_idempotencykey")]

    operations = [migrations.RunPython(create_ttl_index, drop_ttl_index)]
