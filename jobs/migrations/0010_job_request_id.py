from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("jobs", "0009_move_webhookdelivery_to_webhooks")]

    operations = [
        migrations.AddField(
            model_name="job",
            name="request_id",
            field=models.CharField(blank=True, default="", max_length=128),
        ),
    ]
