from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = []

    operations = [
        migrations.CreateModel(
            name="CircuitBreaker",
            fields=[
                (
                    "service",
                    models.CharField(
                        db_column="_id", max_length=64, primary_key=True, serialize=False
                    ),
                ),
                (
                    "state",
                    models.CharField(
                        choices=[
                            ("closed", "Closed"),
                            ("open", "Open"),
                            ("half_open", "Half Open"),
                        ],
                        default="closed",
                        max_length=16,
                    ),
                ),
                ("failures", models.PositiveIntegerField(default=0)),
                ("opened_at", models.DateTimeField(blank=True, default=None, null=True)),
                ("probe_at", models.DateTimeField(blank=True, default=None, null=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
            ],
        ),
    ]
