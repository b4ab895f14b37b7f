"""`brokers.time_zone`: the zone the portal shows a broker's times in (default America/Los_Angeles, the
product's own zone). A constant default: PostgreSQL 11+ adds the column without rewriting the table."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("security", "0003_partner_key_policies"),
    ]

    operations = [
        migrations.AddField(
            model_name="broker",
            name="time_zone",
            field=models.CharField(
                choices=[
                    ("America/New_York", "Eastern (New York)"),
                    ("America/Chicago", "Central (Chicago)"),
                    ("America/Denver", "Mountain (Denver)"),
                    ("America/Phoenix", "Mountain, no daylight saving (Phoenix)"),
                    ("America/Los_Angeles", "Pacific (Los Angeles)"),
                    ("America/Anchorage", "Alaska (Anchorage)"),
                    ("Pacific/Honolulu", "Hawaii (Honolulu)"),
                ],
                db_default="America/Los_Angeles",
                default="America/Los_Angeles",
                help_text="The portal shows times in this zone.",
                max_length=64,
            ),
        ),
    ]
