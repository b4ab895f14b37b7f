"""The event trail moved to equity_connect and brokers to security (their tables are unchanged); this
migration only points pipeline's state at them. It runs before leads/0006, which deletes the old Broker
state, so that no model still points at it then."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("pipeline", "0005_staging_unlogged_json"),
        ("security", "0002_broker"),
        ("equity_connect", "0001_initial"),
    ]

    run_before = [("leads", "0006_broker_moved_to_security")]

    operations = [
        # The table stays as it is: only Django's idea of which app owns the model changes.
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(
                    name="PipelineEvent",
                ),
                migrations.AlterField(
                    model_name="pipelinedlq",
                    name="broker",
                    field=models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="security.broker",
                    ),
                ),
                migrations.AlterField(
                    model_name="upload",
                    name="broker",
                    field=models.ForeignKey(
                        blank=True,
                        help_text="X-Broker-Id: assign the file's leads to this broker",
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="security.broker",
                    ),
                ),
            ],
        ),
    ]
