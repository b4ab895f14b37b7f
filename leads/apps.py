from django.apps import AppConfig


class LeadsConfig(AppConfig):
    name = "leads"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from axes.signals import user_locked_out

        from .signals import record_lockout

        user_locked_out.connect(record_lockout, dispatch_uid="leads.login_locked_out_event")
