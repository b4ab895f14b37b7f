"""Merges of re-sent leads as HOT updates (heap-only tuples: no index entry rewritten).

A partner sending a list again refreshes valuations, and with them `lead_score` and `score_breakdown`,
for every lead in it (the merge path of the ingestion). PostgreSQL can write such an update without
touching any of the table's nine indexes (one of them the portal's trigram GIN, ~90 entries per lead)
only when (1) no indexed column changes and (2) the new row version fits on the same page.

(1) `leads_queued_score_idx` indexed `lead_score`, so every re-scored lead rewrote every index. The
    feeder ranks candidates on the materialized view's own partial index, and re-checks them here by
    primary key, so the index goes.
(2) `fillfactor = 50`: bulk inserts fill pages half full, leaving room for each lead's next version on
    its own page. Measured here: 105k merges into 210k leads, 9.3 s at fillfactor 100 (no HOT) and
    1.2 s at 50 (all HOT); inserting 300k leads costs the same either way (18-19 s); the heap is twice
    the size, which is what an update-heavy table settles at anyway (each update leaves a dead
    version behind). It applies to pages written from now on; `VACUUM FULL leads` (or pg_repack)
    rewrites existing ones.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("leads", "0004_portal_search_function"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="lead",
            name="leads_queued_score_idx",
        ),
        migrations.RunSQL(
            "ALTER TABLE leads SET (fillfactor = 50)",
            reverse_sql="ALTER TABLE leads RESET (fillfactor)",
        ),
    ]
