# WebhookDelivery moved to the webhooks app: removed from this app's state only. Its collection
# and documents stay where they are (webhooks.WebhookDelivery keeps db_table), so no data moves.

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("jobs", "0008_job_callback_url_webhooks")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="WebhookDelivery")],
            database_operations=[],
        )
    ]
