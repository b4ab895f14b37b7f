"""Brokers moved to security (security/migrations/0002); the `brokers` table and the foreign keys are
unchanged. pipeline/migrations/0006 runs before this one (its `run_before`)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("leads", "0005_leads_hot_updates"),
        ("security", "0002_broker"),
    ]

    operations = [
        # The table stays as it is: only Django's idea of which app owns the model changes.
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="consenttoken",
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
                    model_name="lead",
                    name="assigned_broker",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="leads",
                        to="security.broker",
                    ),
                ),
                migrations.DeleteModel(
                    name="Broker",
                ),
            ],
        ),
    ]
