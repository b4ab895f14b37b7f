"""The two staff roles, *ops* and *admin*, as Django groups (equity_connect/staff_roles.py says what each may do).

Only the groups are created here: their permissions exist only once post_migrate has run for every app, so
`staff_roles_sync` sets them after every migrate."""

from django.db import migrations

ROLES = ("ops", "admin")


def create_roles(apps, schema_editor):
    group = apps.get_model("auth", "Group")
    for name in ROLES:
        group.objects.using(schema_editor.connection.alias).get_or_create(name=name)


def delete_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.using(schema_editor.connection.alias).filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("leads", "0009_access_records"),
    ]

    operations = [migrations.RunPython(create_roles, reverse_code=delete_roles)]
