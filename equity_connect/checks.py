"""System checks: the application must not be able to bypass row-level security; a deployment must be able to
send lawful e-mail."""

from django.conf import settings
from django.core.checks import Error, Tags, register
from django.db import connections


@register(Tags.database, deploy=True)
def application_role_is_subject_to_rls(app_configs=None, databases=None, **kwargs):
    if not databases or "default" not in databases:
        return []
    errors = []
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT rolsuper, rolbypassrls, rolinherit FROM pg_roles WHERE rolname = current_user")
        superuser, bypass, inherit = cursor.fetchone()
        cursor.execute("SELECT tableowner = current_user FROM pg_tables WHERE tablename = 'leads'")
        owner = cursor.fetchone()
    if superuser or bypass:
        errors.append(
            Error(
                "DATABASE_URL connects as a superuser or a BYPASSRLS role, so row-level security does not apply.",
                hint="Connect with a separate NOINHERIT login role; run migrations with DATABASE_ADMIN_URL.",
                id="equity_connect.E001",
            )
        )
    if owner and owner[0]:
        errors.append(
            Error(
                "DATABASE_URL's role owns the tables, so row-level security does not apply to it.",
                hint="Set DATABASE_ADMIN_URL to the owner and DATABASE_URL to a separate login role.",
                id="equity_connect.E002",
            )
        )
    if inherit and settings.DATABASE_ADMIN.get("USER") != settings.DATABASE_APP_ROLE:
        errors.append(
            Error(
                "The application role has INHERIT, so it holds service_role's rights without a database context.",
                hint=f"ALTER ROLE {settings.DATABASE_APP_ROLE} NOINHERIT;",
                id="equity_connect.E003",
            )
        )
    return errors


@register(deploy=True)
def consent_emails_carry_a_postal_address(app_configs=None, **kwargs):
    if settings.SENDER_POSTAL_ADDRESS.strip():
        return []
    return [
        Error(
            "SENDER_POSTAL_ADDRESS is not set: consent e-mails must carry the sender's postal address (CAN-SPAM).",
            hint="Set SENDER_POSTAL_ADDRESS to the postal address printed at the foot of every consent e-mail.",
            id="equity_connect.E004",
        )
    ]
