"""Production: the same code, stricter flags. `manage.py check --deploy` is clean with these."""

from django.core.exceptions import ImproperlyConfigured

from equity_connect.logging import logging_config

from .base import *  # noqa: F403
from .base import (
    BLIND_INDEX_KEYS,
    ENCRYPTION_KEYS,
    FORM_LINK_SECRET,
    LOG_LEVEL,
    PII_ENCRYPTION_KEYS,
    SECRET_KEY,
    STAFF_2FA_POLICIES,
    env,
)

DEBUG = False
if SECRET_KEY.startswith("insecure-") or len(SECRET_KEY) < 50:
    raise ImproperlyConfigured("SECRET_KEY must be set to a long random value in production")
if not ENCRYPTION_KEYS:
    raise ImproperlyConfigured("ENCRYPTION_KEY must be set in production (partner secrets are encrypted with it)")
if not PII_ENCRYPTION_KEYS or not BLIND_INDEX_KEYS:
    raise ImproperlyConfigured(
        "PII_ENCRYPTION_KEYS and BLIND_INDEX_KEY must be set in production (e-mail and phone are encrypted)"
    )
if not FORM_LINK_SECRET:
    raise ImproperlyConfigured("FORM_LINK_SECRET must be set in production (consent links are signed with it)")

SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True

# Superusers must log in with a second factor (security/two_factor.py); "staff" extends it to every staff user.
STAFF_2FA_REQUIRED = env.str("STAFF_2FA_REQUIRED", default="superusers")
if STAFF_2FA_REQUIRED not in STAFF_2FA_POLICIES:
    raise ImproperlyConfigured(f"STAFF_2FA_REQUIRED must be one of {', '.join(STAFF_2FA_POLICIES)}")

# One JSON object per line for the log aggregator (LOG_FORMAT=text brings back the key=value lines).
LOG_FORMAT = env.str("LOG_FORMAT", default="json")
LOGGING = logging_config(log_format=LOG_FORMAT, level=LOG_LEVEL, q_level=env.str("Q_LOG_LEVEL", default="WARNING"))
