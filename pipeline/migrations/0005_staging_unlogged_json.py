"""`leads_staging` made cheap to fill (staging is the first thing a 1M-row upload waits on).

- UNLOGGED: staged rows are a scratch copy of a file we keep; no WAL for them. After a server crash
  PostgreSQL empties the table, and the re-run of the upload stages it again from the stored file
  (it deletes what a crashed run staged anyway). Standbys do not need staging rows.
- No database foreign key to `uploads`: a deferred check per row at every batch's commit.
- `raw` as `json`: validated but kept as text (jsonb's binary form is built only for the rare rejected
  row, by the cast into `pipeline_dlq.payload`).
"""

import django.db.models.deletion
from django.db import migrations, models

import pipeline.fields


class Migration(migrations.Migration):
    dependencies = [
        ("pipeline", "0004_verbose_names"),
    ]

    operations = [
        migrations.AlterField(
            model_name="leadstaging",
            name="raw",
            field=pipeline.fields.JSONTextField(),
        ),
        migrations.AlterField(
            model_name="leadstaging",
            name="upload",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="staging_rows",
                to="pipeline.upload",
            ),
        ),
        migrations.RunSQL(
            "ALTER TABLE leads_staging SET UNLOGGED",
            reverse_sql="ALTER TABLE leads_staging SET LOGGED",
        ),
    ]
