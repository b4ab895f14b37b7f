"""Ingest speed (issue 14): `leads_staging.raw` holds only a rejected line's raw row.

The normaliser seals the raw record (AES-GCM of its JSON) only for a line it rejects, the one row the DLQ keeps
(pipeline/dlq.py reads `raw` for `reject_reason IS NOT NULL` only); a valid line stages NULL there. Sealing and
sending every line's ~600-byte record cost ≈ 7 µs of normaliser CPU per row (≈ 36 → ≈ 28 µs) and 56% of the
COPY text (296 → 131 MB per 200k rows; docs/benchmarks.md). So the column becomes nullable.

RunSQL (not AlterField) so that the reverse can first give the NULL rows an empty document: staged rows live
only while their upload is applied, and nothing reads a valid line's raw row, so `{}` loses nothing.
"""

from django.db import migrations

import pipeline.fields


class Migration(migrations.Migration):
    dependencies = [
        ("pipeline", "0016_pii_encryption"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    sql="ALTER TABLE leads_staging ALTER COLUMN raw DROP NOT NULL",
                    reverse_sql=(
                        "UPDATE leads_staging SET raw = '{}' WHERE raw IS NULL;"
                        " ALTER TABLE leads_staging ALTER COLUMN raw SET NOT NULL"
                    ),
                ),
            ],
            state_operations=[
                migrations.AlterField(
                    model_name="leadstaging",
                    name="raw",
                    field=pipeline.fields.EncryptedRawRowField(blank=True, null=True),
                ),
            ],
        ),
    ]
