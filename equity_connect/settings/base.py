"""Settings shared by every environment. Every secret and URL comes from the environment or `.env`."""

from __future__ import annotations

import urllib.parse
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from equity_connect.logging import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
# Process environment wins over .env (read_env only sets keys that are not already set).
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DJANGO_ENV = env.str("DJANGO_ENV", default="local")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="insecure-local-only-key-set-SECRET_KEY-in-production")
# Earlier SECRET_KEYs, still accepted for sessions and password-reset links while a rotation settles.
SECRET_KEY_FALLBACKS = env.list("SECRET_KEY_FALLBACKS", default=[])
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "equity_connect",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_q",
    "import_export",
    "security",
    "leads",
    "pipeline",
]

MIDDLEWARE = [
    # X-Request-ID from the proxy (or made here), on every log line of the request and echoed in the response.
    "equity_connect.request_id.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Whether the session passed the second factor (django-otp).
    "django_otp.middleware.OTPMiddleware",
    # Content-Security-Policy on every page; no-store on every response to a logged-in user.
    "security.headers.SecurityHeadersMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
    # A staff session without its second factor reaches only the code and enrolment pages (security/two_factor.py).
    "security.two_factor.StaffTwoFactorMiddleware",
    # Opens the per-request database context (role + claims) that row-level security reads.
    "security.middleware.DatabaseContextMiddleware",
]

ROOT_URLCONF = "equity_connect.urls"
WSGI_APPLICATION = "equity_connect.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def _database(url: str) -> dict:
    config = env.db_url_config(url)
    # A unix-socket directory is percent-encoded in the URL's host part.
    config["HOST"] = urllib.parse.unquote(config.get("HOST") or "")
    config["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
    config["CONN_HEALTH_CHECKS"] = True
    config.setdefault("OPTIONS", {})["application_name"] = "equity-connect"
    config["TEST"] = {"NAME": env.str("TEST_DATABASE_NAME", default=f"test_{config['NAME']}")}
    return config


DATABASE_URL = env.str("DATABASE_URL", default="postgres://equity_app@localhost:5432/equity_connect")
# The owner of the schema: migrations and administration run with it (see equity_connect/db.py).
DATABASE_ADMIN_URL = env.str("DATABASE_ADMIN_URL", default=DATABASE_URL)
# The same login role straight to PostgreSQL, when DATABASE_URL goes through a transaction-mode pooler (PgBouncer):
# the work that needs one session from start to finish (an upload's ingestion: its session-level advisory lock,
# temporary tables and temp_buffers) connects here (equity_connect/db.py `direct_connection`).
DATABASE_DIRECT_URL = env.str("DATABASE_DIRECT_URL", default="") or DATABASE_URL
DATABASES = {"default": _database(DATABASE_URL)}
# A transaction-mode pooler hands each transaction to any server connection, and PgBouncer 1.18 does not carry
# prepared statements across: psycopg prepares none (Django's default, said here so that no one turns it on).
DATABASES["default"]["OPTIONS"]["prepare_threshold"] = None
DATABASE_ADMIN = _database(DATABASE_ADMIN_URL)
DATABASE_DIRECT = _database(DATABASE_DIRECT_URL)
# The login role the application connects with; migrations grant it what it needs (equity_connect/grants.py).
DATABASE_APP_ROLE = DATABASES["default"]["USER"]

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "equity_connect.auth.EmailBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/accounts/landing/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "America/Los_Angeles"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "var" / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / "var" / "media")
MEDIA_URL = "/media/"

EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Equity Connect <noreply@equityconnect.local>")

# A server error's technical page (DEBUG only) goes to staff only and hides every secret (equity_connect/debug.py).
DEFAULT_EXCEPTION_REPORTER = "equity_connect.debug.StaffOnlyExceptionReporter"
DEFAULT_EXCEPTION_REPORTER_FILTER = "equity_connect.debug.SecretsHidingFilter"

# No inline script anywhere (templates load static files; data travels in json_script blocks). Inline styles are
# allowed: the Django admin's and django-import-export's own templates use them (security/headers.py).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
# Messages live in the session (the database), never in a cookie.
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True

# --- Login lockout (django-axes) and rate limits (equity_connect/auth.py) -------------------------
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=10)
AXES_COOLOFF_TIME = env.float("AXES_COOLOFF_HOURS", default=0.5)  # hours
# django-axes locks the account (a broker office shares one NAT address, so not the address); the address has a
# limit of its own (LOGIN_IP_*), counted by our handler in PostgreSQL beside django-axes' tables.
AXES_LOCKOUT_PARAMETERS = ["username"]
SILENCED_SYSTEM_CHECKS = ["axes.W006"]
AXES_RESET_ON_SUCCESS = True
AXES_USERNAME_FORM_FIELD = "username"
AXES_USERNAME_CALLABLE = "equity_connect.auth.axes_username"  # one form of the e-mail address (case, spaces)
AXES_CLIENT_IP_CALLABLE = "security.client_ip.client_ip"  # the trusted-proxy rule
AXES_HANDLER = "equity_connect.auth.LoginAttemptHandler"
AXES_LOCKOUT_CALLABLE = "equity_connect.auth.lockout_response"  # registration/locked_out.html, HTTP 429
LOGIN_IP_FAILURE_LIMIT = env.int("LOGIN_IP_FAILURE_LIMIT", default=10)  # failed logins per client address …
LOGIN_IP_WINDOW_MINUTES = env.int("LOGIN_IP_WINDOW_MINUTES", default=15)  # … in this many minutes
PASSWORD_RESET_PER_EMAIL_LIMIT = env.int("PASSWORD_RESET_PER_EMAIL_LIMIT", default=3)  # reset mails per address …
PASSWORD_RESET_PER_IP_LIMIT = env.int("PASSWORD_RESET_PER_IP_LIMIT", default=10)  # … and per client address …
PASSWORD_RESET_WINDOW_MINUTES = env.int("PASSWORD_RESET_WINDOW_MINUTES", default=60)  # … in this many minutes

# --- Two-factor login for staff (security/two_factor.py) -------------------------------------------
# Who must have a second factor: "superusers" (production's default), "staff" or "none". Staff with a device are
# asked for its code after every login whatever this says; brokers never are.
STAFF_2FA_POLICIES = ("none", "superusers", "staff")
STAFF_2FA_REQUIRED = env.str("STAFF_2FA_REQUIRED", default="none")
if STAFF_2FA_REQUIRED not in STAFF_2FA_POLICIES:
    raise ImproperlyConfigured(f"STAFF_2FA_REQUIRED must be one of {', '.join(STAFF_2FA_POLICIES)}")
STAFF_2FA_FAILURE_LIMIT = env.int("STAFF_2FA_FAILURE_LIMIT", default=5)  # wrong codes in a row, then locked …
STAFF_2FA_LOCKOUT_MINUTES = env.int("STAFF_2FA_LOCKOUT_MINUTES", default=15)  # … for this long after the last
OTP_TOTP_ISSUER = "Equity Connect"  # the name authenticator apps show
OTP_TOTP_THROTTLE_FACTOR = 1  # django-otp waits 1, 2, 4 … seconds after each wrong code
OTP_ADMIN_HIDE_SENSITIVE_DATA = True  # the admin never shows a device's key or QR code

# --- Product settings ----------------------------------------------------------------------------
# Partner-key secrets are encrypted at rest with these Fernet keys; the first encrypts, all decrypt
# (list a new key first to rotate, then run `manage.py partner_key reencrypt`).
ENCRYPTION_KEYS = env.list("ENCRYPTION_KEY", default=[])
# Personal data at rest (security/pii.py): AES-GCM keys `id:base64 32-byte key`, the first encrypts, all decrypt
# (list a new key first, then `manage.py reencrypt`); blind-index keys `version:base64 key`, the first is
# current and every version is kept for good (an erased person's suppression entry must stay matchable).
PII_ENCRYPTION_KEYS = env.list("PII_ENCRYPTION_KEYS", default=[])
BLIND_INDEX_KEYS = env.list("BLIND_INDEX_KEY", default=[])
HMAC_SECRET_KEY = env.str("HMAC_SECRET_KEY", default="")  # legacy single-key signing (seed clients)
SIGNATURE_TOLERANCE_SECONDS = env.int("SIGNATURE_TOLERANCE_SECONDS", default=300)
UPLOAD_MAX_BYTES = env.int("UPLOAD_MAX_BYTES", default=200 * 1024 * 1024)
# A partner's request body must arrive within GRACE + Content-Length / MIN_BYTES_PER_SECOND seconds, else 408:
# a body trickling in would hold a web thread (security/request_body.py).
UPLOAD_READ_GRACE_SECONDS = env.float("UPLOAD_READ_GRACE_SECONDS", default=30.0)
UPLOAD_READ_MIN_BYTES_PER_SECOND = env.int("UPLOAD_READ_MIN_BYTES_PER_SECOND", default=100_000)
REPLAY_GUARD_DAYS = env.int("REPLAY_GUARD_DAYS", default=7)


def _local_address() -> str:
    """Where `make run` serves (HOST, PORT: scripts/serve.py), as a browser reaches it from this machine."""
    host = env.str("HOST", default="")
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)  # noqa: S104
    return f"http://{f'[{host}]' if ':' in host else host}:{env.int('PORT', default=8000)}"


# Locally, consent links point where `make run` serves (`PORT=9000 make run`); production requires CONSENT_FORM_URL.
CONSENT_FORM_URL = env.str("CONSENT_FORM_URL", default="") or _local_address()
# The portal's own address, for the links in the brokers' notification e-mails (leads/notifications.py).
PORTAL_BASE_URL = env.str("PORTAL_BASE_URL", default="") or _local_address()
FORM_LINK_SECRET = env.str("FORM_LINK_SECRET", default="")
CONSENT_TOKEN_TTL_DAYS = env.int("CONSENT_TOKEN_TTL_DAYS", default=7)
# Consent links are e-mailed to the lead, never shown to the broker: each broker may send this many in 24 hours,
# and every such e-mail carries the sender's postal address (CAN-SPAM; `check --deploy` requires it).
CONSENT_LINKS_PER_BROKER_PER_DAY = env.int("CONSENT_LINKS_PER_BROKER_PER_DAY", default=200)
SENDER_POSTAL_ADDRESS = env.str("SENDER_POSTAL_ADDRESS", default="")
# Our own e-mails to a lead (the consent link) wait for the lead's contact window on this channel
# (leads/compliance/contact_windows.py): "sms" or "phone" give them the quiet hours of texts or calls (08:00 to
# 21:00 local unless compliance narrowed a state's row); "email" only the table's e-mail rows (none by default).
CONSENT_EMAIL_WINDOW = env.str("CONSENT_EMAIL_WINDOW", default="sms")
if CONSENT_EMAIL_WINDOW not in ("email", "sms", "phone"):
    raise ImproperlyConfigured("CONSENT_EMAIL_WINDOW must be one of: email, sms, phone")
# Broker portal and consent: django-axes renders this page (HTTP 429) for a locked-out login.
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# The campaigns and channels (feeder, Instantly, Twilio, scoring): equity_connect/settings/campaigns.py.
from .campaigns import *  # noqa: E402, F403

WEBHOOK_DELIVERY_RETENTION_DAYS = env.int("WEBHOOK_DELIVERY_RETENTION_DAYS", default=90)
UPLOAD_FILE_RETENTION_DAYS = env.int("UPLOAD_FILE_RETENTION_DAYS", default=30)  # stored CSVs of finished uploads
# Retention (pipeline/retention.py, daily): what is kept how long. Consent and access records have a floor of
# AUDIT_RETENTION_FLOOR_DAYS (5 years) that no setting goes below: a lower value stops the start-up here, and the
# database functions refuse it too (leads migration 0013).
AUDIT_RETENTION_FLOOR_DAYS = 1826
DLQ_PAYLOAD_RETENTION_DAYS = env.int("DLQ_PAYLOAD_RETENTION_DAYS", default=90)  # payload redacted, row kept
SMS_BODY_RETENTION_DAYS = env.int("SMS_BODY_RETENTION_DAYS", default=365)  # text bodies emptied, row kept
STAGING_RETENTION_DAYS = env.int("STAGING_RETENTION_DAYS", default=7)  # staged rows of finished uploads
EVENT_DETAIL_RETENTION_DAYS = env.int("EVENT_DETAIL_RETENTION_DAYS", default=365)  # detail emptied, row kept
# Whole events: a month's partition of pipeline_events is dropped once all of it is older than this (no archive).
# Never below EVENT_DETAIL_RETENTION_DAYS: the detail is emptied first, the row goes later.
EVENT_RETENTION_DAYS = env.int("EVENT_RETENTION_DAYS", default=730)
# The daily event_partitions job keeps this many months of pipeline_events partitions ready beyond the current one.
EVENT_PARTITION_MONTHS_AHEAD = env.int("EVENT_PARTITION_MONTHS_AHEAD", default=3)
ACCESS_RECORD_RETENTION_DAYS = env.int("ACCESS_RECORD_RETENTION_DAYS", default=AUDIT_RETENTION_FLOOR_DAYS)
CONSENT_RECORD_RETENTION_DAYS = env.int("CONSENT_RECORD_RETENTION_DAYS", default=2557)  # 7 years
for _name in ("ACCESS_RECORD_RETENTION_DAYS", "CONSENT_RECORD_RETENTION_DAYS"):
    if globals()[_name] < AUDIT_RETENTION_FLOOR_DAYS:
        raise ImproperlyConfigured(
            f"{_name} is {globals()[_name]}: consent and access records are kept at least "
            f"{AUDIT_RETENTION_FLOOR_DAYS} days (5 years); set it to {AUDIT_RETENTION_FLOOR_DAYS} or more"
        )
for _name in (
    "DLQ_PAYLOAD_RETENTION_DAYS",
    "STAGING_RETENTION_DAYS",
    "EVENT_DETAIL_RETENTION_DAYS",
    "SMS_BODY_RETENTION_DAYS",
):
    if globals()[_name] < 1:
        raise ImproperlyConfigured(f"{_name} must be at least 1 (days)")
if EVENT_RETENTION_DAYS < EVENT_DETAIL_RETENTION_DAYS:
    raise ImproperlyConfigured(
        f"EVENT_RETENTION_DAYS is {EVENT_RETENTION_DAYS}: events are kept at least as long as their detail"
        f" (EVENT_DETAIL_RETENTION_DAYS, {EVENT_DETAIL_RETENTION_DAYS}); set it to"
        f" {EVENT_DETAIL_RETENTION_DAYS} or more"
    )
if not 0 <= EVENT_PARTITION_MONTHS_AHEAD <= 24:
    raise ImproperlyConfigured("EVENT_PARTITION_MONTHS_AHEAD must be between 0 and 24 (months)")
del _name
# Where `manage.py privacy export` writes its files when no --output is given.
PRIVACY_EXPORT_DIR = env.path("PRIVACY_EXPORT_DIR", default=BASE_DIR / "var" / "privacy")
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
ALERT_WEBHOOK_URL = env.str("ALERT_WEBHOOK_URL", default="")
ALERT_EMAILS = env.list("ALERT_EMAILS", default=[])
# Who to call, `role=address` pairs: the admin index, `manage.py support_contacts`, the end of every alert mail.
SUPPORT_CONTACTS = env.list("SUPPORT_CONTACTS", default=[])
SCHEDULE_TIME_ZONE = "America/Los_Angeles"
# Ingestion: uploads spool to disk past INGEST_SPOOL_BYTES while they are verified; staging
# commits every INGEST_STAGE_BATCH_ROWS rows (progress); per-lead timeline events only for uploads touching
# at most INGEST_LEAD_EVENTS_MAX leads; a re-run waits INGEST_LOCK_WAIT_SECONDS for a dying worker's lock.
INGEST_SPOOL_BYTES = env.int("INGEST_SPOOL_BYTES", default=8 * 1024 * 1024)
INGEST_STAGE_BATCH_ROWS = env.int("INGEST_STAGE_BATCH_ROWS", default=100_000)
# Files this large or larger are normalised in child processes (cores of their own); -1: never.
INGEST_SUBPROCESS_MIN_BYTES = env.int("INGEST_SUBPROCESS_MIN_BYTES", default=4_000_000)
INGEST_NORMALISER_PROCESSES = env.int("INGEST_NORMALISER_PROCESSES", default=2)  # child processes per such file
# The DNC registry import computes each number's phone blind index in this many child processes; the
# `dnc_registry_stale` alert fires when the newest import is older than DNC_REGISTRY_MAX_AGE_DAYS.
DNC_IMPORT_PROCESSES = env.int("DNC_IMPORT_PROCESSES", default=2)
DNC_REGISTRY_MAX_AGE_DAYS = env.int("DNC_REGISTRY_MAX_AGE_DAYS", default=31)
INGEST_LEAD_EVENTS_MAX = env.int("INGEST_LEAD_EVENTS_MAX", default=10_000)
# An upload creating at least this many leads adds their portal search rows as one lead_search partition built
# by CREATE INDEX (pipeline/ingest/sql/search.py); fewer are written row by row by the trigger on leads.
INGEST_SEARCH_PARTITION_MIN_LEADS = env.int("INGEST_SEARCH_PARTITION_MIN_LEADS", default=1_000)
INGEST_LOCK_WAIT_SECONDS = env.float("INGEST_LOCK_WAIT_SECONDS", default=60.0)
# The sweeper queues again an unfinished upload no worker holds, once it was queued this long ago (every minute),
# or this long ago when a worker starts; /healthz and the uploads_stuck alert report uploads older than
# UPLOAD_STUCK_MINUTES that are not done.
UPLOAD_SWEEP_IDLE_SECONDS = env.int("UPLOAD_SWEEP_IDLE_SECONDS", default=120)
UPLOAD_SWEEP_START_IDLE_SECONDS = env.int("UPLOAD_SWEEP_START_IDLE_SECONDS", default=5)
UPLOAD_STUCK_MINUTES = env.int("UPLOAD_STUCK_MINUTES", default=30)
INGEST_KEEP_STAGING = env.bool("INGEST_KEEP_STAGING", default=False)
INGEST_TEMP_BUFFERS = env.str("INGEST_TEMP_BUFFERS", default="256MB")  # the apply step's temporary tables
# How long an upload keeps retrying a transient database fault (a restart, a failover, a dropped connection)
# before it is failed; a failover takes a few minutes at most. Keep it well under Q_TIMEOUT.
INGEST_TRANSIENT_RETRY_SECONDS = env.float("INGEST_TRANSIENT_RETRY_SECONDS", default=600.0)

# Ops: alert thresholds, health, metrics access, the rollback escape hatch.
ALERT_HMAC_FAILURE_RATE = env.float("ALERT_HMAC_FAILURE_RATE", default=0.05)  # critical above
ALERT_DLQ_DEPTH = env.int("ALERT_DLQ_DEPTH", default=100)  # critical above
ALERT_VERIFICATION_RATE = env.float("ALERT_VERIFICATION_RATE", default=0.80)  # warning below
ALERT_REPLY_RATE = env.float("ALERT_REPLY_RATE", default=0.05)  # warning below
ALERT_DUPLICATE_UPLOAD_RATE = env.float("ALERT_DUPLICATE_UPLOAD_RATE", default=0.10)  # warning above
ALERT_WINDOW_HOURS = env.int("ALERT_WINDOW_HOURS", default=24)  # trailing window of the rate rules
ALERT_REPLY_WINDOW_DAYS = env.int("ALERT_REPLY_WINDOW_DAYS", default=14)  # replies take days to arrive
ALERT_MIN_SAMPLE = env.int("ALERT_MIN_SAMPLE", default=20)  # a rate over fewer events never fires
# The verification rate fires only over this many leads created in the window: one small upload never does.
ALERT_VERIFICATION_MIN_LEADS = env.int("ALERT_VERIFICATION_MIN_LEADS", default=200)
ALERT_WEBHOOK_TIMEOUT_SECONDS = env.float("ALERT_WEBHOOK_TIMEOUT_SECONDS", default=5.0)
# Dead-man's switches: the daily MV refresh is missing after this many hours; a business day's feeder run by then.
ALERT_MV_REFRESH_MAX_AGE_HOURS = env.int("ALERT_MV_REFRESH_MAX_AGE_HOURS", default=26)
ALERT_FEEDER_DEADLINE = env.str("ALERT_FEEDER_DEADLINE", default="06:30")  # Los Angeles time
# /healthz evaluates the alert rules itself (in the background) when the alerts job has not run for this long,
# so the alerts still go out when the scheduler is dead.
ALERTS_FROM_HEALTHZ = env.bool("ALERTS_FROM_HEALTHZ", default=True)
ALERTS_FALLBACK_AFTER_SECONDS = env.int("ALERTS_FALLBACK_AFTER_SECONDS", default=600)
HEALTH_SCHEDULER_MAX_AGE_SECONDS = env.int("HEALTH_SCHEDULER_MAX_AGE_SECONDS", default=600)
METRICS_ALLOWED_NETWORKS = env.list("METRICS_ALLOWED_NETWORKS", default=[])  # CIDRs allowed without the token
# Our proxies in front of the app (security/client_ip.py): the client's address is read from X-Forwarded-For
# only as far as they wrote it. Networks win over a count; neither: REMOTE_ADDR (reached directly).
TRUSTED_PROXY_NETWORKS = env.list("TRUSTED_PROXY_NETWORKS", default=[])
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
# RFC 3339; at most SIGNATURE_ENFORCEMENT_MAX_DISABLE_HOURS ahead, else ignored (docs/runbooks/rollback.md).
SIGNATURE_ENFORCEMENT_DISABLED_UNTIL = env.str("SIGNATURE_ENFORCEMENT_DISABLED_UNTIL", default="")
SIGNATURE_ENFORCEMENT_MAX_DISABLE_HOURS = env.int("SIGNATURE_ENFORCEMENT_MAX_DISABLE_HOURS", default=24)
# Exports from the admin open in spreadsheets: their resources quote every cell that would run as a formula
# (equity_connect/spreadsheets.py, one rule for every CSV); the library's own escape only drops one leading `=`.
IMPORT_EXPORT_ESCAPE_FORMULAE_ON_EXPORT = False

# Every database context bounds its statements by its kind of work (equity_connect/db.py), in seconds:
# statement_timeout and lock_timeout, e.g. DB_STATEMENT_TIMEOUTS="web=30,job=300,ingest=900".
_DEFAULT_STATEMENT_TIMEOUTS = {"web": 30, "job": 300, "ingest": 1800, "mv_refresh": 600, "import": 600}
_DEFAULT_LOCK_TIMEOUTS = {"web": 5, "job": 30, "ingest": 60, "mv_refresh": 60, "import": 30}
DB_STATEMENT_TIMEOUTS = {
    **_DEFAULT_STATEMENT_TIMEOUTS,
    **{key: float(value) for key, value in env.dict("DB_STATEMENT_TIMEOUTS", default={}).items()},
}
DB_LOCK_TIMEOUTS = {
    **_DEFAULT_LOCK_TIMEOUTS,
    **{key: float(value) for key, value in env.dict("DB_LOCK_TIMEOUTS", default={}).items()},
}

# --- django-q2 -----------------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
Q_CLUSTER = {
    "name": "equity-connect",
    "workers": env.int("Q_WORKERS", default=2),
    "timeout": env.int("Q_TIMEOUT", default=1800),  # a 1M-row upload fits well inside
    "retry": env.int("Q_RETRY", default=2100),  # must exceed timeout, or a running task is handed out again
    "max_attempts": 3,
    "ack_failures": True,
    "save_limit": 1000,
    "catch_up": False,
    "time_zone": SCHEDULE_TIME_ZONE,
    "orm": "default",
    "poll": 2,
    "label": "Tasks",
}
if REDIS_URL:
    Q_CLUSTER.pop("orm")
    Q_CLUSTER["redis"] = REDIS_URL

# --- Logging: key=value text, or one JSON object per line (LOG_FORMAT=json; production's default) on stderr ------
# Secrets are never passed to a logger. Fields (request_id, job, job_run_id, upload_id, partner, duration_ms, …) are
# keys of their own (equity_connect/logging.py).
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOG_FORMAT = env.str("LOG_FORMAT", default="text")
LOGGING = logging_config(log_format=LOG_FORMAT, level=LOG_LEVEL, q_level=env.str("Q_LOG_LEVEL", default="WARNING"))
