"""Brokers move to security: a broker is the principal row-level security scopes by (their id is
`auth.uid()`), and the partner key's default broker and the request middleware need them below `leads`.
The `brokers` table is unchanged (leads/migrations/0006 takes the model out of leads)."""

import uuid

import django.contrib.postgres.fields
import django.contrib.postgres.functions
import django.db.models.deletion
import django.db.models.functions.datetime
from django.conf import settings
from django.db import migrations, models


def _rename_content_type(old_app: str, new_app: str, model: str):
    """Move the model's content type (and so its permissions and admin log) to its new app."""

    def rename(apps, schema_editor):
        content_types = apps.get_model("contenttypes", "ContentType")
        if not content_types.objects.filter(app_label=new_app, model=model).exists():
            content_types.objects.filter(app_label=old_app, model=model).update(app_label=new_app)

    return rename


class Migration(migrations.Migration):
    dependencies = [
        ("security", "0001_initial"),
        ("contenttypes", "0002_remove_content_type_name"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        # The table stays as it is: only Django's idea of which app owns the model changes.
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="Broker",
                    fields=[
                        (
                            "id",
                            models.UUIDField(
                                db_default=django.contrib.postgres.functions.RandomUUID(),
                                default=uuid.uuid4,
                                editable=False,
                                primary_key=True,
                                serialize=False,
                            ),
                        ),
                        ("name", models.CharField(max_length=200)),
                        ("email", models.EmailField(max_length=254, unique=True)),
                        ("phone", models.CharField(blank=True, default="", max_length=32)),
                        ("company", models.CharField(blank=True, default="", max_length=200)),
                        ("nmls_id", models.CharField(blank=True, default="", max_length=32, verbose_name="NMLS id")),
                        (
                            "territory_states",
                            django.contrib.postgres.fields.ArrayField(
                                base_field=models.CharField(max_length=2), blank=True, default=list, size=None
                            ),
                        ),
                        (
                            "territory_zip_prefixes",
                            django.contrib.postgres.fields.ArrayField(
                                base_field=models.CharField(max_length=5), blank=True, default=list, size=None
                            ),
                        ),
                        ("active", models.BooleanField(db_default=True, default=True)),
                        (
                            "created_at",
                            models.DateTimeField(
                                auto_now_add=True, db_default=django.db.models.functions.datetime.Now()
                            ),
                        ),
                        (
                            "updated_at",
                            models.DateTimeField(auto_now=True, db_default=django.db.models.functions.datetime.Now()),
                        ),
                        (
                            "user",
                            models.OneToOneField(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="broker",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "db_table": "brokers",
                        "ordering": ["name"],
                    },
                ),
                migrations.AlterField(
                    model_name="partnerkey",
                    name="default_broker",
                    field=models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="partner_keys",
                        to="security.broker",
                    ),
                ),
            ],
        ),
        migrations.RunPython(
            _rename_content_type("leads", "security", "broker"),
            _rename_content_type("security", "leads", "broker"),
        ),
    ]
