"""The test suite: real PostgreSQL (the embedded cluster or DATABASE_URL), fast password hashing."""

from .base import *  # noqa: F403
from .base import Q_CLUSTER

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # tests only: speed
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
Q_CLUSTER = {**Q_CLUSTER, "sync": False}
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
ENCRYPTION_KEYS = ["Tl5k1xM2Pn9fQx3Jx0m0F6QWvLkq1b2Yt8eU0wq3h1E="]
PII_ENCRYPTION_KEYS = ["t1:3q2-7wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="]
BLIND_INDEX_KEYS = ["1:YmxpbmQtaW5kZXgtdGVzdC1rZXktMDEyMzQ1Njc4OWE="]
FORM_LINK_SECRET = "test-form-link-secret-0123456789abcdef"
SENDER_POSTAL_ADDRESS = "Equity Connect, 100 Test Street, Suite 1, San Diego, CA 92101"
# Consent e-mails go at once whatever the hour the suite runs (no e-mail rows in the contact windows); the tests
# of the quiet hours set "sms" and pass the moment (tests/leads/test_consent_delivery.py).
CONSENT_EMAIL_WINDOW = "email"
INSTANTLY_WEBHOOK_SECRET = "test-webhook-secret-0123456789abcdef"
WHITENOISE_USE_FINDERS = True
ALERTS_FROM_HEALTHZ = False  # tests that want it turn it on: a background evaluation would write to other tests' data
STAFF_2FA_REQUIRED = "none"  # tests that want two-factor login turn it on (as production has it: "superusers")
