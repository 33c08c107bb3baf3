# WebhookDelivery, moved here from the jobs app: added to this app's state only, on the
# collection and index the jobs app made (jobs 0008), so the existing deliveries are kept.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [("jobs", "0009_move_webhookdelivery_to_webhooks")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="WebhookDelivery",
                    fields=[
                        (
                            "id",
                            models.UUIDField(
                                db_column="_id",
                                editable=False,
                                primary_key=True,
                                serialize=False,
                            ),
                        ),
                        ("event", models.CharField(default="job.finished", max_length=64)),
                        ("url", models.CharField(max_length=2048)),
                        ("job_status", models.CharField(max_length=32)),
                        (
                            "status",
                            models.CharField(
                                choices=[
                                    ("PENDING", "Pending"),
                                    ("DELIVERED", "Delivered"),
                                    ("FAILED", "Failed"),
                                ],
                                default="PENDING",
                                max_length=16,
                            ),
                        ),
                        ("attempts", models.JSONField(blank=True, default=list)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("updated_at", models.DateTimeField(auto_now=True)),
                        (
                            "job",
                            models.ForeignKey(
                                db_constraint=False,
                                on_delete=django.db.models.deletion.DO_NOTHING,
                                related_name="webhook_deliveries",
                                to="jobs.job",
                            ),
                        ),
                    ],
                    options={
                        "verbose_name_plural": "webhook deliveries",
                        "db_table": "jobs_webhookdelivery",
                        "indexes": [
                            models.Index(
                                fields=["job", "-created_at"], name="webhook_job_created"
                            )
                        ],
                    },
                )
            ],
            database_operations=[],
        )
    ]
