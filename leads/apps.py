from django.apps import AppConfig


def scoring_sync(sender, using="default", **kwargs) -> None:
    """After every `migrate`: `lead_score_weights` equals the settings' weights and `lead_rule_score_apply()`
    is the current formula, so the seed's `upsert_lead()` scores as the ingestion does."""
    from django.db import connections

    from .scoring import rule_score_function_sql, score_weights_sync

    connection = connections[using]
    with connection.cursor() as cursor:
        # Only the schema owner (`manage.py migrate`) syncs; the app's login role also emits post_migrate (a test
        # database's flush) but may not change the schema. No table: migrated back past leads 0018.
        cursor.execute(
            "SELECT pg_has_role(current_user, tableowner, 'USAGE') FROM pg_tables"
            " WHERE tablename = 'lead_score_weights'"
        )
        owner = cursor.fetchone()
    if not owner or not owner[0]:
        return
    score_weights_sync(using=using)
    with connection.cursor() as cursor:
        cursor.execute(rule_score_function_sql())


class LeadsConfig(AppConfig):
    name = "leads"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from axes.signals import user_locked_out
        from django.db.models.signals import post_migrate, pre_save

        from .models import Lead
        from .signals import lead_contact_indexes, record_lockout

        user_locked_out.connect(record_lockout, dispatch_uid="leads.login_locked_out_event")
        pre_save.connect(lead_contact_indexes, sender=Lead, dispatch_uid="leads.contact_indexes")
        post_migrate.connect(scoring_sync, sender=self, dispatch_uid="leads.scoring_sync")
