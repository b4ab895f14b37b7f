"""Rate-limit counters shared by every web process (equity_connect/throttle.py): login failures per client
address, password-reset mails per e-mail address and per client address."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("equity_connect", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="Throttle",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("scope", models.CharField(max_length=32)),
                ("key_digest", models.CharField(max_length=64)),
                ("window_started_at", models.DateTimeField()),
                ("hits", models.PositiveIntegerField()),
            ],
            options={
                "indexes": [models.Index(fields=["window_started_at"], name="throttle_window_idx")],
                "constraints": [
                    models.UniqueConstraint(fields=("scope", "key_digest"), name="throttle_scope_key_uniq")
                ],
            },
        ),
    ]
