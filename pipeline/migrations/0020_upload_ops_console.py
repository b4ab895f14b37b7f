"""The ops console (issue 16): an upload counts the rejected rows recovered from the DLQ since (`rows_recovered`,
with a database default so that a writer that does not know the column yet still inserts), and remembers who
cancelled it and when (a cancelled upload is `failed`: the status set is a partner contract).

Plain columns on `uploads`: its row-level security policies cover them, and `pipeline_writer`'s column grants are
re-applied after every migrate from pipeline/ingest/privileges.py (which lists `rows_recovered`).
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("pipeline", "0019_business_holidays"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="upload",
            name="cancelled_at",
            field=models.DateTimeField(blank=True, help_text="Cancelled by a person (status failed)", null=True),
        ),
        migrations.AddField(
            model_name="upload",
            name="cancelled_by",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="upload",
            name="rows_recovered",
            field=models.IntegerField(db_default=0, default=0, help_text="Rejected rows fixed in the DLQ since"),
        ),
    ]
