"""The rate-limit counters' collection (jobs/api/throttling.py), with a TTL index on expires_at.

The counters have no model: each is one document updated with `$inc`. MongoDB removes a past
window's counter once `expires_at` has passed (its TTL monitor runs about once a minute).
"""

from django.db import migrations

COLLECTION = "rate_limit_counters"
INDEX_NAME = "rate_limit_expires_ttl"


def create_ttl_index(apps, schema_editor):
    collection = schema_editor.connection.get_collection(COLLECTION)
    collection.create_index("expires_at", name=INDEX_NAME, expireAfterSeconds=0)


def drop_collection(apps, schema_editor):
    schema_editor.connection.get_collection(COLLECTION).drop()


class Migration(migrations.Migration):
    dependencies = [("jobs", "0003_idempotency_ttl")]

    operations = [migrations.RunPython(create_ttl_index, drop_collection)]
