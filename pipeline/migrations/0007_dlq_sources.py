"""The DLQ source `job` was never written (jobs record their failures as events): dropped from the choices."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("pipeline", "0006_moved_models"),
    ]

    operations = [
        migrations.AlterField(
            model_name="pipelinedlq",
            name="source",
            field=models.CharField(
                choices=[
                    ("upload_row", "Upload Row"),
                    ("upload", "Upload"),
                    ("instantly_push", "Instantly Push"),
                    ("webhook", "Webhook"),
                ],
                max_length=32,
            ),
        ),
    ]
