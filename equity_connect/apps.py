from django.apps import AppConfig
from django.db.models.signals import post_migrate


class EquityConnectConfig(AppConfig):
    name = "equity_connect"
    verbose_name = "Equity Connect"

    def ready(self) -> None:
        from . import checks, grants  # noqa: F401  (registers the system checks)

        # post_migrate is only sent for apps with models; `pipeline` migrates last.
        post_migrate.connect(
            grants.grant_application_privileges,
            sender=self.apps.get_app_config("pipeline"),
            dispatch_uid="equity_connect.grants",
        )
