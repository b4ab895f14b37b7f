"""The event trail (`pipeline_events`) moves to equity_connect, beside its one recorder, so every layer
writes it through one module; the table is unchanged (pipeline/migrations/0006 takes it out of pipeline)."""

import django.db.models.functions.datetime
from django.db import migrations, models


def _rename_content_type(old_app: str, new_app: str, model: str):
    """Move the model's content type (and so its permissions and admin log) to its new app."""

    def rename(apps, schema_editor):
        content_types = apps.get_model("contenttypes", "ContentType")
        if not content_types.objects.filter(app_label=new_app, model=model).exists():
            content_types.objects.filter(app_label=old_app, model=model).update(app_label=new_app)

    return rename


class Migration(migrations.Migration):
    initial = True

    dependencies = [("contenttypes", "0002_remove_content_type_name")]

    operations = [
        # The table stays as it is: only Django's idea of which app owns the model changes.
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="PipelineEvent",
                    fields=[
                        ("id", models.BigAutoField(primary_key=True, serialize=False)),
                        ("event_type", models.CharField(max_length=64)),
                        ("lead_id", models.UUIDField(blank=True, null=True)),
                        ("broker_id", models.UUIDField(blank=True, null=True)),
                        ("upload_id", models.UUIDField(blank=True, null=True)),
                        (
                            "event_data",
                            models.JSONField(db_default=models.Value({}, models.JSONField()), default=dict),
                        ),
                        ("duration_ms", models.IntegerField(blank=True, null=True)),
                        (
                            "status",
                            models.CharField(
                                choices=[("success", "Success"), ("failure", "Failure"), ("retry", "Retry")],
                                db_default="success",
                                default="success",
                                max_length=16,
                            ),
                        ),
                        ("error_message", models.TextField(blank=True, null=True)),
                        (
                            "created_at",
                            models.DateTimeField(
                                auto_now_add=True, db_default=django.db.models.functions.datetime.Now()
                            ),
                        ),
                    ],
                    options={
                        "db_table": "pipeline_events",
                        "ordering": ["-created_at"],
                        "indexes": [
                            models.Index(fields=["event_type", "created_at"], name="pipeline_events_type_idx"),
                            models.Index(
                                condition=models.Q(("lead_id__isnull", False)),
                                fields=["lead_id", "created_at"],
                                name="pipeline_events_lead_idx",
                            ),
                            models.Index(
                                condition=models.Q(("broker_id__isnull", False)),
                                fields=["broker_id", "created_at"],
                                name="pipeline_events_broker_idx",
                            ),
                            models.Index(
                                condition=models.Q(("upload_id__isnull", False)),
                                fields=["upload_id"],
                                name="pipeline_events_upload_idx",
                            ),
                            models.Index(fields=["created_at"], name="pipeline_events_created_idx"),
                        ],
                    },
                ),
            ],
        ),
        migrations.RunPython(
            _rename_content_type("pipeline", "equity_connect", "pipelineevent"),
            _rename_content_type("equity_connect", "pipeline", "pipelineevent"),
        ),
    ]
