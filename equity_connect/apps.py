from django.apps import AppConfig
from django.db.models.signals import post_migrate


class EquityConnectConfig(AppConfig):
    name = "equity_connect"
    verbose_name = "Equity Connect"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks, grants, staff_roles  # noqa: F401  (registers the system checks)

        # post_migrate is sent once per app after every migration has run, so any one app will do: this one.
        post_migrate.connect(grants.grant_application_privileges, sender=self, dispatch_uid="equity_connect.grants")
        # The staff roles' permissions, declared in code (the groups themselves come from a migration).
        post_migrate.connect(staff_roles.staff_roles_sync, sender=self, dispatch_uid="equity_connect.staff_roles")
