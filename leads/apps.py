from django.apps import AppConfig


class LeadsConfig(AppConfig):
    name = "leads"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from axes.signals import user_locked_out
        from django.db.models.signals import pre_save

        from .models import Lead
        from .signals import lead_contact_indexes, record_lockout

        user_locked_out.connect(record_lockout, dispatch_uid="leads.login_locked_out_event")
        pre_save.connect(lead_contact_indexes, sender=Lead, dispatch_uid="leads.contact_indexes")
