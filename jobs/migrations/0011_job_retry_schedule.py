# Retries are scheduled, not slept: what `attempts` counted (task deliveries) is now
# `deliveries`, its documents kept by the rename; `attempts` counts downstream attempts of the
# current step, and `next_attempt_at` / `retrying_since` (and the webhook's own due time) hold the schedule
# and the horizon.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("jobs", "0010_job_request_id")]

    operations = [
        migrations.RenameField(model_name="job", old_name="attempts", new_name="deliveries"),
        migrations.AddField(
            model_name="job",
            name="attempts",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="job",
            name="next_attempt_at",
            field=models.DateTimeField(blank=True, default=None, null=True),
        ),
        migrations.AddField(
            model_name="job",
            name="retrying_since",
            field=models.DateTimeField(blank=True, default=None, null=True),
        ),
        migrations.AddField(
            model_name="job",
            name="webhook_next_attempt_at",
            field=models.DateTimeField(blank=True, default=None, null=True),
        ),
        migrations.AddIndex(
            model_name="job",
            index=models.Index(
                fields=["webhook_status", "webhook_next_attempt_at"],
                name="job_webhook_next_attempt",
            ),
        ),
        migrations.AddIndex(
            model_name="job",
            index=models.Index(
                fields=["status", "next_attempt_at"], name="job_status_next_attempt"
            ),
        ),
    ]
