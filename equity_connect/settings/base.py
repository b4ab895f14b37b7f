"""Settings shared by every environment. Every secret and URL comes from the environment or `.env`."""

from __future__ import annotations

import urllib.parse
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
# Process environment wins over .env (read_env only sets keys that are not already set).
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DJANGO_ENV = env.str("DJANGO_ENV", default="local")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="insecure-local-only-key-set-SECRET_KEY-in-production")
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
    "django_q",
    "import_export",
    "security",
    "leads",
    "pipeline",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
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
DATABASES = {"default": _database(DATABASE_URL)}
DATABASE_ADMIN = _database(DATABASE_ADMIN_URL)
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

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True

# --- Login lockout (django-axes) ---------------------------------------------------------------
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=10)
AXES_COOLOFF_TIME = env.float("AXES_COOLOFF_HOURS", default=0.5)  # hours
# Lock the account (not the address: a broker office shares one NAT address); rate-limit addresses at the proxy.
AXES_LOCKOUT_PARAMETERS = ["username"]
SILENCED_SYSTEM_CHECKS = ["axes.W006"]
AXES_RESET_ON_SUCCESS = True
AXES_USERNAME_FORM_FIELD = "username"

# --- Product settings ----------------------------------------------------------------------------
# Partner-key secrets are encrypted at rest with these Fernet keys; the first encrypts, all decrypt
# (list a new key first to rotate, then run `manage.py partner_key reencrypt`).
ENCRYPTION_KEYS = env.list("ENCRYPTION_KEY", default=[])
HMAC_SECRET_KEY = env.str("HMAC_SECRET_KEY", default="")  # legacy single-key signing (seed clients)
SIGNATURE_TOLERANCE_SECONDS = env.int("SIGNATURE_TOLERANCE_SECONDS", default=300)
UPLOAD_MAX_BYTES = env.int("UPLOAD_MAX_BYTES", default=200 * 1024 * 1024)
REPLAY_GUARD_DAYS = env.int("REPLAY_GUARD_DAYS", default=7)
CONSENT_FORM_URL = env.str("CONSENT_FORM_URL", default="http://127.0.0.1:8000")
FORM_LINK_SECRET = env.str("FORM_LINK_SECRET", default="")
CONSENT_TOKEN_TTL_DAYS = env.int("CONSENT_TOKEN_TTL_DAYS", default=7)
# Broker portal and consent: django-axes renders this page (HTTP 429) for a locked-out login.
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
FEEDER_DAILY_LIMIT = env.int("FEEDER_DAILY_LIMIT", default=250)
INSTANTLY_API_URL = env.str("INSTANTLY_API_URL", default="https://api.instantly.ai")
INSTANTLY_API_KEY = env.str("INSTANTLY_API_KEY", default="")
INSTANTLY_CAMPAIGN_ID = env.str("INSTANTLY_CAMPAIGN_ID", default="")
INSTANTLY_WEBHOOK_SECRET = env.str("INSTANTLY_WEBHOOK_SECRET", default="")
# Jobs, feeder and Instantly. The webhook secret travels in this header (set it on the webhook).
INSTANTLY_WEBHOOK_HEADER = env.str("INSTANTLY_WEBHOOK_HEADER", default="X-Webhook-Secret")
INSTANTLY_WEBHOOK_MAX_BYTES = env.int("INSTANTLY_WEBHOOK_MAX_BYTES", default=1024 * 1024)  # larger deliveries are 413
INSTANTLY_CONNECT_TIMEOUT_SECONDS = env.float("INSTANTLY_CONNECT_TIMEOUT_SECONDS", default=5.0)
INSTANTLY_READ_TIMEOUT_SECONDS = env.float("INSTANTLY_READ_TIMEOUT_SECONDS", default=30.0)
INSTANTLY_MAX_ATTEMPTS = env.int("INSTANTLY_MAX_ATTEMPTS", default=3)  # per batch, then the DLQ
INSTANTLY_BACKOFF_SECONDS = env.float("INSTANTLY_BACKOFF_SECONDS", default=2.0)  # first retry's ceiling
INSTANTLY_BACKOFF_MAX_SECONDS = env.float("INSTANTLY_BACKOFF_MAX_SECONDS", default=60.0)
DLQ_RETRY_BACKOFF_MINUTES = env.int("DLQ_RETRY_BACKOFF_MINUTES", default=15)  # doubled per failed retry
DLQ_RETRY_MAX_ATTEMPTS = env.int("DLQ_RETRY_MAX_ATTEMPTS", default=5)
MV_REFRESH_LOCK_TIMEOUT_SECONDS = env.float("MV_REFRESH_LOCK_TIMEOUT_SECONDS", default=60.0)
WEBHOOK_DELIVERY_RETENTION_DAYS = env.int("WEBHOOK_DELIVERY_RETENTION_DAYS", default=90)
UPLOAD_FILE_RETENTION_DAYS = env.int("UPLOAD_FILE_RETENTION_DAYS", default=30)  # stored CSVs of finished uploads
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
ALERT_WEBHOOK_URL = env.str("ALERT_WEBHOOK_URL", default="")
ALERT_EMAILS = env.list("ALERT_EMAILS", default=[])
SCHEDULE_TIME_ZONE = "America/Los_Angeles"
# Ingestion: uploads spool to disk past INGEST_SPOOL_BYTES while they are verified; staging
# commits every INGEST_STAGE_BATCH_ROWS rows (progress); per-lead timeline events only for uploads touching
# at most INGEST_LEAD_EVENTS_MAX leads; a re-run waits INGEST_LOCK_WAIT_SECONDS for a dying worker's lock.
INGEST_SPOOL_BYTES = env.int("INGEST_SPOOL_BYTES", default=8 * 1024 * 1024)
INGEST_STAGE_BATCH_ROWS = env.int("INGEST_STAGE_BATCH_ROWS", default=100_000)
# Files this large or larger are normalised in child processes (cores of their own); -1: never.
INGEST_SUBPROCESS_MIN_BYTES = env.int("INGEST_SUBPROCESS_MIN_BYTES", default=4_000_000)
INGEST_NORMALISER_PROCESSES = env.int("INGEST_NORMALISER_PROCESSES", default=2)  # child processes per such file
INGEST_LEAD_EVENTS_MAX = env.int("INGEST_LEAD_EVENTS_MAX", default=10_000)
INGEST_LOCK_WAIT_SECONDS = env.float("INGEST_LOCK_WAIT_SECONDS", default=60.0)
INGEST_KEEP_STAGING = env.bool("INGEST_KEEP_STAGING", default=False)
INGEST_TEMP_BUFFERS = env.str("INGEST_TEMP_BUFFERS", default="256MB")  # the apply step's temporary tables
# How long an upload keeps retrying a transient database fault (a restart, a failover, a dropped connection)
# before it is failed; a failover takes a few minutes at most. Keep it well under Q_TIMEOUT.
INGEST_TRANSIENT_RETRY_SECONDS = env.float("INGEST_TRANSIENT_RETRY_SECONDS", default=600.0)
# Scoring weights (leads/scoring.py WEIGHTS), e.g. LEAD_SCORE_WEIGHTS='{"age_75": 20}'.
LEAD_SCORE_WEIGHTS = env.json("LEAD_SCORE_WEIGHTS", default={})

# Ops: alert thresholds, health, metrics access, the rollback escape hatch.
ALERT_HMAC_FAILURE_RATE = env.float("ALERT_HMAC_FAILURE_RATE", default=0.05)  # critical above
ALERT_DLQ_DEPTH = env.int("ALERT_DLQ_DEPTH", default=100)  # critical above
ALERT_VERIFICATION_RATE = env.float("ALERT_VERIFICATION_RATE", default=0.80)  # warning below
ALERT_REPLY_RATE = env.float("ALERT_REPLY_RATE", default=0.05)  # warning below
ALERT_DUPLICATE_UPLOAD_RATE = env.float("ALERT_DUPLICATE_UPLOAD_RATE", default=0.10)  # warning above
ALERT_WINDOW_HOURS = env.int("ALERT_WINDOW_HOURS", default=24)  # trailing window of the rate rules
ALERT_REPLY_WINDOW_DAYS = env.int("ALERT_REPLY_WINDOW_DAYS", default=14)  # replies take days to arrive
ALERT_MIN_SAMPLE = env.int("ALERT_MIN_SAMPLE", default=20)  # a rate over fewer events never fires
ALERT_WEBHOOK_TIMEOUT_SECONDS = env.float("ALERT_WEBHOOK_TIMEOUT_SECONDS", default=5.0)
HEALTH_SCHEDULER_MAX_AGE_SECONDS = env.int("HEALTH_SCHEDULER_MAX_AGE_SECONDS", default=600)
METRICS_ALLOWED_NETWORKS = env.list("METRICS_ALLOWED_NETWORKS", default=[])  # CIDRs allowed without the token
# Our proxies in front of the app (security/client_ip.py): the client's address is read from X-Forwarded-For
# only as far as they wrote it. Networks win over a count; neither: REMOTE_ADDR (reached directly).
TRUSTED_PROXY_NETWORKS = env.list("TRUSTED_PROXY_NETWORKS", default=[])
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
# RFC 3339; at most SIGNATURE_ENFORCEMENT_MAX_DISABLE_HOURS ahead, else ignored (docs/runbooks/rollback.md).
SIGNATURE_ENFORCEMENT_DISABLED_UNTIL = env.str("SIGNATURE_ENFORCEMENT_DISABLED_UNTIL", default="")
SIGNATURE_ENFORCEMENT_MAX_DISABLE_HOURS = env.int("SIGNATURE_ENFORCEMENT_MAX_DISABLE_HOURS", default=24)
# Exports from the admin open in spreadsheets: neutralise cells that would run as formulas (vendor data).
IMPORT_EXPORT_ESCAPE_FORMULAE_ON_EXPORT = True

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

# --- Logging: structured (key=value) lines on stderr; secrets are never passed to a logger ---------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "structured": {
            "()": "equity_connect.logging.StructuredFormatter",
        },
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structured"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "axes": {"level": "WARNING"},
        "django_q": {"level": env.str("Q_LOG_LEVEL", default="WARNING")},
    },
}
