"""Settings of the campaigns and their channels: the feeder, Instantly, Twilio (SMS), the DLQ retry of pushes,
the rule score's weights and the learned score. Imported by base.py (every environment); from the environment or
`.env`, which base.py has read by then."""

import json

import environ
from django.core.exceptions import ImproperlyConfigured

env = environ.Env()

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
# SMS (pipeline/sms): Twilio's Messaging API. No account SID or auth token: dry-run mode (nothing is sent).
TWILIO_API_URL = env.str("TWILIO_API_URL", default="https://api.twilio.com")
TWILIO_ACCOUNT_SID = env.str("TWILIO_ACCOUNT_SID", default="")
TWILIO_AUTH_TOKEN = env.str("TWILIO_AUTH_TOKEN", default="")
TWILIO_MESSAGING_SERVICE_SID = env.str("TWILIO_MESSAGING_SERVICE_SID", default="")
TWILIO_FROM_NUMBER = env.str("TWILIO_FROM_NUMBER", default="")
# The public https origin Twilio posts to (behind a TLS proxy the request's own URL is not what Twilio signed).
TWILIO_WEBHOOK_BASE_URL = env.str("TWILIO_WEBHOOK_BASE_URL", default="")
TWILIO_CONNECT_TIMEOUT_SECONDS = env.float("TWILIO_CONNECT_TIMEOUT_SECONDS", default=5.0)
TWILIO_READ_TIMEOUT_SECONDS = env.float("TWILIO_READ_TIMEOUT_SECONDS", default=15.0)
TWILIO_MAX_ATTEMPTS = env.int("TWILIO_MAX_ATTEMPTS", default=3)
SMS_DAILY_CAP = env.int("SMS_DAILY_CAP", default=100)  # first texts per Los Angeles day, whatever the limit
# Empty: SMS shares FEEDER_DAILY_LIMIT with e-mail (leads fed by either count); a number: SMS has its own limit.
FEEDER_SMS_DAILY_LIMIT = env.str("FEEDER_SMS_DAILY_LIMIT", default="").strip()
if FEEDER_SMS_DAILY_LIMIT and not FEEDER_SMS_DAILY_LIMIT.isdigit():
    raise ImproperlyConfigured("FEEDER_SMS_DAILY_LIMIT must be empty (shared with e-mail) or a whole number")
FEEDER_SMS_DAILY_LIMIT = int(FEEDER_SMS_DAILY_LIMIT) if FEEDER_SMS_DAILY_LIMIT else None
SMS_FIRST_MESSAGE_TEMPLATE = env.str("SMS_FIRST_MESSAGE_TEMPLATE", default="") or (
    "Hi {first_name}, this is {broker_name} about your home on {property_street}. "
    "Could we talk about your options? Reply STOP to opt out."
)
# The follow-ups after the first text: each step `after_days` after the previous text, sent only while the lead
# has not replied or opted out and may still be texted (pipeline/sms/sequence.py).
_SMS_SEQUENCE_DEFAULT = [
    {
        "after_days": 3,
        "template": "Hi {first_name}, {broker_name} again. Happy to answer any questions about "
        "your options for {property_street}. Reply STOP to opt out.",
    },
    {
        "after_days": 7,
        "template": "Hi {first_name}, one last note from {broker_name}: if now is not the time, "
        "no problem. Reply any time. Reply STOP to opt out.",
    },
]
_sms_sequence = env.str("SMS_SEQUENCE", default="").strip()  # empty: the default two steps
try:
    SMS_SEQUENCE = json.loads(_sms_sequence) if _sms_sequence else _SMS_SEQUENCE_DEFAULT
except ValueError as exc:
    raise ImproperlyConfigured(f"SMS_SEQUENCE is not valid JSON: {exc}") from exc
if not isinstance(SMS_SEQUENCE, list) or not all(
    isinstance(step, dict)
    and isinstance(step.get("after_days"), int)
    and step["after_days"] >= 1
    and isinstance(step.get("template"), str)
    and step["template"].strip()
    for step in SMS_SEQUENCE
):
    raise ImproperlyConfigured('SMS_SEQUENCE must be a JSON list of {"after_days": 1 or more, "template": "..."}')
# A text left `sending` (its sender died, or the read timed out) is reconciled with Twilio after this long.
SMS_RECONCILE_AFTER_SECONDS = env.int("SMS_RECONCILE_AFTER_SECONDS", default=300)
DLQ_RETRY_BACKOFF_MINUTES = env.int("DLQ_RETRY_BACKOFF_MINUTES", default=15)  # doubled per failed retry
DLQ_RETRY_MAX_ATTEMPTS = env.int("DLQ_RETRY_MAX_ATTEMPTS", default=5)
MV_REFRESH_LOCK_TIMEOUT_SECONDS = env.float("MV_REFRESH_LOCK_TIMEOUT_SECONDS", default=60.0)
# Scoring weights (leads/scoring.py WEIGHTS), e.g. LEAD_SCORE_WEIGHTS='{"age_75": 20}'.
LEAD_SCORE_WEIGHTS = env.json("LEAD_SCORE_WEIGHTS", default={})
# The learned score (leads/learned/): promoted only past these bars on the time-based holdout.
SCORE_MODEL_MIN_OUTCOMES = env.int("SCORE_MODEL_MIN_OUTCOMES", default=2000)
SCORE_MODEL_MIN_AUC_GAIN = env.float("SCORE_MODEL_MIN_AUC_GAIN", default=0.02)
SCORE_MODEL_HOLDOUT_SHARE = env.float("SCORE_MODEL_HOLDOUT_SHARE", default=0.2)
# A fed lead with no reply, booking, bounce or unsubscribe this many days after it was fed counts as "no answer".
SCORE_MODEL_SEQUENCE_DAYS = env.int("SCORE_MODEL_SEQUENCE_DAYS", default=30)
# The share of each day's feed drawn at random from all contactable leads (exploration), 0 to 1.
FEEDER_EXPLORATION_SHARE = env.float("FEEDER_EXPLORATION_SHARE", default=0.10)
if not 0 <= FEEDER_EXPLORATION_SHARE <= 1:
    raise ImproperlyConfigured("FEEDER_EXPLORATION_SHARE must be between 0 and 1")
