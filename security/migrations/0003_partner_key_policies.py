"""Partner key policies: `allow_v1` (the replayable v1 signature, off unless ops allow it for a key) and
`allowed_brokers` (the brokers a key may name in X-Broker-Id).

The new table's row-level security and the seeding of each key's list from its recent uploads are in
pipeline/migrations/0009_replay_guard_per_partner.py: the roles and the `uploads` table are not below
`security` in the migration graph.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("security", "0002_broker"),
    ]

    operations = [
        migrations.AddField(
            model_name="partnerkey",
            name="allow_v1",
            field=models.BooleanField(
                db_default=False,
                default=False,
                help_text=(
                    "Accept the v1 signature (body only, replayable) from this key. Off unless the partner cannot "
                    "sign v2."
                ),
                verbose_name="allow v1 signatures",
            ),
        ),
        migrations.AddField(
            model_name="partnerkey",
            name="allowed_brokers",
            field=models.ManyToManyField(
                blank=True,
                db_table="partner_key_allowed_brokers",
                help_text="Brokers this key may name in X-Broker-Id; the default broker is always allowed.",
                related_name="routable_partner_keys",
                to="security.broker",
            ),
        ),
    ]
