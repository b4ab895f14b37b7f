"""Sending one alert notification, routed by severity.

    critical -> e-mail (ALERT_EMAILS) and webhook (ALERT_WEBHOOK_URL)
    warning  -> webhook; by e-mail instead while no webhook is configured

The webhook body is Slack-compatible (`text`) plus the alert's fields for other receivers. A failing channel is
logged, never raised and never retried: the next notification is the incident's next change.
"""

from __future__ import annotations

import logging

import requests
from django.conf import settings
from django.core.mail import send_mail

from equity_connect.support import on_call_footer
from pipeline.models import Alert

from .types import CRITICAL

logger = logging.getLogger(__name__)

MARKERS = {"resolved": "RESOLVED", "reminder": "STILL FIRING"}


def alert_channels(severity: str) -> tuple[str, ...]:
    """Where an alert of `severity` goes with the current settings: ("email", "webhook"), a subset, or ()."""
    webhook = bool(settings.ALERT_WEBHOOK_URL)
    email = bool(settings.ALERT_EMAILS) and (severity == CRITICAL or not webhook)
    return tuple(name for name, on in (("email", email), ("webhook", webhook)) if on)


def alert_text(alert: Alert, change: str, title: str) -> str:
    marker = MARKERS.get(change, alert.severity.upper())
    return f"[{marker}] Equity Connect: {title} — {alert.message}"


def alert_payload(alert: Alert, change: str, title: str) -> dict:
    return {
        "text": alert_text(alert, change, title),
        "alert_id": alert.pk,
        "rule": alert.rule,
        "severity": alert.severity,
        "state": alert.state,
        "change": change,
        "value": alert.value,
        "threshold": alert.threshold,
        "message": alert.message,
        "opened_at": alert.opened_at.isoformat() if alert.opened_at else None,
        "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
    }


def alert_notify(*, alert: Alert, change: str, title: str) -> dict:
    """Send one change of one alert to its severity's channels. Returns which channels it reached."""
    sent = {"email": False, "webhook": False}
    channels = alert_channels(alert.severity)
    text = alert_text(alert, change, title)
    if "email" in channels:
        try:
            send_mail(
                text[:200],
                f"{text}\n\nOpened: {alert.opened_at}\nResolved: {alert.resolved_at or '-'}\n" + on_call_footer(),
                settings.DEFAULT_FROM_EMAIL,
                settings.ALERT_EMAILS,
            )
            sent["email"] = True
        except Exception:
            logger.exception("alert email failed", extra={"alert_id": alert.pk, "rule": alert.rule})
    if "webhook" in channels:
        try:
            response = requests.post(
                settings.ALERT_WEBHOOK_URL,
                json=alert_payload(alert, change, title),
                timeout=settings.ALERT_WEBHOOK_TIMEOUT_SECONDS,
            )
            response.raise_for_status()
            sent["webhook"] = True
        except requests.RequestException as exc:
            logger.error(
                "alert webhook failed",
                extra={"alert_id": alert.pk, "rule": alert.rule, "error": exc.__class__.__name__},
            )
    return sent
