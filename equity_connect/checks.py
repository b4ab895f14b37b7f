"""System checks: the application must not be able to bypass row-level security (`check --database default`), and
a deployment must be configured completely (`check --deploy`: each missing piece is an error), including what
lawful e-mail needs."""

import ipaddress
import urllib.parse

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
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


# --- Production configuration (`manage.py check --deploy`) ----------------------------------------------------

NOT_SENDING_EMAIL_BACKENDS = {
    "django.core.mail.backends.console.EmailBackend",
    "django.core.mail.backends.locmem.EmailBackend",
    "django.core.mail.backends.dummy.EmailBackend",
    "django.core.mail.backends.filebased.EmailBackend",
}
INSTANTLY_SETTINGS = ("INSTANTLY_API_KEY", "INSTANTLY_CAMPAIGN_ID", "INSTANTLY_WEBHOOK_SECRET")
HMAC_SECRET_MIN_BYTES = 32


def _local_host(host: str) -> bool:
    host = (host or "").strip("[]").lower()
    if host in ("", "localhost", "testserver") or host.endswith((".localhost", ".local")):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified or address.is_link_local


@register(Tags.security, deploy=True)
def production_settings_are_complete(app_configs=None, **kwargs):
    """What a deployment needs and the code cannot default: each missing piece is an error, not a warning."""
    errors = []
    if not settings.METRICS_TOKEN and not settings.METRICS_ALLOWED_NETWORKS:
        errors.append(
            Error(
                "/metrics is open to anyone: neither METRICS_TOKEN nor METRICS_ALLOWED_NETWORKS is set.",
                hint="Set METRICS_TOKEN (Prometheus sends it as a bearer token) or METRICS_ALLOWED_NETWORKS.",
                id="equity_connect.E010",
            )
        )
    if settings.EMAIL_BACKEND in NOT_SENDING_EMAIL_BACKENDS:
        errors.append(
            Error(
                f"EMAIL_BACKEND is {settings.EMAIL_BACKEND}: password resets and alert mails would never be sent.",
                hint="EMAIL_BACKEND=django.core.mail.backends.smtp.EmailBackend with Django's EMAIL_HOST… settings.",
                id="equity_connect.E011",
            )
        )
    consent = urllib.parse.urlsplit(settings.CONSENT_FORM_URL or "")
    if consent.scheme != "https" or _local_host(consent.hostname or ""):
        errors.append(
            Error(
                f"CONSENT_FORM_URL is {settings.CONSENT_FORM_URL!r}: consent links mailed to leads must open the "
                "public site over HTTPS.",
                hint="CONSENT_FORM_URL=https://<the public host name>",
                id="equity_connect.E012",
            )
        )
    for name in INSTANTLY_SETTINGS:
        if not getattr(settings, name):
            errors.append(
                Error(
                    f"{name} is not set: the campaign feeder (and Instantly's webhooks) cannot work.",
                    hint="Set INSTANTLY_API_KEY, INSTANTLY_CAMPAIGN_ID and INSTANTLY_WEBHOOK_SECRET.",
                    id="equity_connect.E013",
                )
            )
    if not settings.ALERT_EMAILS and not settings.ALERT_WEBHOOK_URL:
        errors.append(
            Error(
                "No alert channel: neither ALERT_EMAILS nor ALERT_WEBHOOK_URL is set, so alerts reach no one.",
                hint="Set ALERT_EMAILS (comma-separated addresses) and/or ALERT_WEBHOOK_URL.",
                id="equity_connect.E014",
            )
        )
    if settings.HMAC_SECRET_KEY and len(settings.HMAC_SECRET_KEY.encode()) < HMAC_SECRET_MIN_BYTES:
        errors.append(
            Error(
                f"HMAC_SECRET_KEY is shorter than {HMAC_SECRET_MIN_BYTES} bytes: upload signatures could be forged.",
                hint="Use a random value of at least 32 bytes (openssl rand -hex 32), or unset it (partner keys).",
                id="equity_connect.E015",
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


@register(Tags.security, deploy=True)
def superusers_log_in_with_two_factors(app_configs=None, **kwargs):
    """Production's default asks superusers for a second factor; switching it off is allowed, and said out loud."""
    if settings.STAFF_2FA_REQUIRED != "none":
        return []
    return [
        Warning(
            "STAFF_2FA_REQUIRED is 'none': superusers, who see all personal data, log in with a password only.",
            hint="Unset STAFF_2FA_REQUIRED (production's default is 'superusers') or set it to 'staff'.",
            id="equity_connect.W020",
        )
    ]


@register(deploy=True)
def support_contacts_are_set(app_configs=None, **kwargs):
    from .support import SupportContactsInvalid, support_contacts

    try:
        contacts = support_contacts()
    except SupportContactsInvalid as error:
        return [
            Error(
                str(error),
                hint="SUPPORT_CONTACTS=on-call=+1 555 0100,data=data-team@example.com",
                id="equity_connect.E016",
            )
        ]
    if not contacts:
        return [
            Warning(
                "SUPPORT_CONTACTS is empty: the admin and the alert mails name nobody to call.",
                hint="SUPPORT_CONTACTS=on-call=+1 555 0100,data=data-team@example.com",
                id="equity_connect.W021",
            )
        ]
    return []
