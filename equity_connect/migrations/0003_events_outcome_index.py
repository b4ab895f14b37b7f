"""The dashboard's funnel asks which of the leads fed in its window ever replied or booked: without a window on
those events, every monthly partition of `pipeline_events` is read. `pipeline_events_outcome_idx` holds only the
three campaign-outcome event types, with the lead, the broker and the time, so each partition answers from its
index alone (docs/benchmarks.md, events section).

State only: pipeline migration 0018 creates the index in the database when it partitions the table (and again on
the plain table when it is reversed), so this app does not depend on pipeline's migrations."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("equity_connect", "0002_throttle")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddIndex(
                    model_name="pipelineevent",
                    index=models.Index(
                        condition=models.Q(
                            ("event_type__in", ["campaign_added", "email_replied", "appointment_booked"]),
                            ("lead_id__isnull", False),
                        ),
                        fields=["event_type", "lead_id"],
                        include=["broker_id", "created_at"],
                        name="pipeline_events_outcome_idx",
                    ),
                ),
            ],
        ),
    ]
