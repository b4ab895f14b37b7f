"""Alert rules (the seed's Phase 8): evaluated every 5 minutes by the alerts job.

    alerts_evaluate()  ->  {"fired": [...], "resolved": [...], "firing": [...], "observations": {...}}

The seed's seven rules and ours, thresholds from settings (ALERT_*):
- critical: HMAC verification failure rate > 5% of upload requests in the trailing window; any request let
  through without a valid signature (the rollback escape hatch) in the window; DLQ depth > 100; the last MV
  refresh failed; the last campaign feeder run failed; an upload failed in the trailing window and was not
  re-run (one incident however many fail: its message lists them, by id and reason).
- warning: verification rate < 80% of the leads created in the window; reply rate < 5% of the leads fed in
  the last ALERT_REPLY_WINDOW_DAYS; duplicate upload rate (409 replays) > 10% of upload requests.
A rate over fewer than ALERT_MIN_SAMPLE events never fires (a quiet night is not an incident). Then the
dead-man's switches of pipeline/monitoring/deadman.py (a missed MV refresh or feeder run, a short feed, a feeder
in dry-run mode, stuck uploads, DNC registry data older than DNC_REGISTRY_MAX_AGE_DAYS).

An `Alert` row is opened when a rule starts to hold and resolved when it stops; a partial unique index keeps
at most one firing alert per rule, so a rule that keeps holding updates its open alert instead of opening
another. Opening and resolving record `alert_fired` / `alert_resolved` events and notify: an email to
ALERT_EMAILS and, when ALERT_WEBHOOK_URL is set, a JSON POST with a Slack-compatible `text` field.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

import requests
from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone

from equity_connect.db import service_context
from equity_connect.events import record_event
from equity_connect.models import PipelineEvent
from equity_connect.support import on_call_footer
from leads.models import Lead
from pipeline.intake.services import (
    DUPLICATE_REASONS,
    DUPLICATE_STATUS,
    SIGNATURE_FAILURE_REASONS,
    SIGNATURE_FAILURE_STATUS,
)
from pipeline.jobs import ALERTS, JobReport, JobResult, job_run
from pipeline.models import Alert, AlertState, Upload, UploadStatus

from .dashboard import campaign_outcomes, dlq_depth, verification_figures
from .deadman import (
    check_dnc_registry_stale,
    check_feeder_dry_run,
    check_feeder_missed,
    check_feeder_short,
    check_mv_refresh_missing,
    check_uploads_stuck,
)
from .types import CRITICAL, WARNING, Observation, Rule

logger = logging.getLogger(__name__)


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def upload_request_counts(*, since: dt.datetime) -> dict:
    """Upload requests since `since`: accepted, rejected for their signature, rejected as replays."""
    reason = Q(event_data__reason__in=sorted(SIGNATURE_FAILURE_REASONS)) | Q(
        event_data__http_status=SIGNATURE_FAILURE_STATUS
    )
    duplicate = Q(event_data__reason__in=sorted(DUPLICATE_REASONS)) | Q(event_data__http_status=DUPLICATE_STATUS)
    rejected = Q(event_type="upload_rejected")
    return PipelineEvent.objects.filter(
        created_at__gte=since, event_type__in=("upload_received", "upload_rejected")
    ).aggregate(
        attempts=Count("id"),
        received=Count("id", filter=Q(event_type="upload_received")),
        signature_failures=Count("id", filter=rejected & reason),
        duplicates=Count("id", filter=rejected & duplicate),
    )


def _window(now: dt.datetime) -> dt.datetime:
    return now - dt.timedelta(hours=settings.ALERT_WINDOW_HOURS)


def _rate_above(value_key: str, label: str, threshold: float) -> Callable[[dt.datetime], Observation]:
    def check(now: dt.datetime) -> Observation:
        counts = upload_request_counts(since=_window(now))
        attempts = counts["attempts"]
        rate = counts[value_key] / attempts if attempts else None
        breached = attempts >= settings.ALERT_MIN_SAMPLE and rate is not None and rate > threshold
        return Observation(
            breached,
            rate,
            threshold,
            f"{label} {_percent(rate)} of {attempts} upload requests in the last {settings.ALERT_WINDOW_HOURS} h"
            f" (threshold {_percent(threshold)})",
        )

    return check


def check_hmac_failure_rate(now: dt.datetime) -> Observation:
    return _rate_above("signature_failures", "HMAC verification failure rate", settings.ALERT_HMAC_FAILURE_RATE)(now)


def check_duplicate_upload_rate(now: dt.datetime) -> Observation:
    return _rate_above("duplicates", "Duplicate upload rate", settings.ALERT_DUPLICATE_UPLOAD_RATE)(now)


def check_unverified_uploads(now: dt.datetime) -> Observation:
    """Any `upload_unverified` event in the window: while SIGNATURE_ENFORCEMENT_DISABLED_UNTIL is on, every
    request it lets through is someone's unsigned upload or status read, and a person should know at once."""
    events = PipelineEvent.objects.filter(event_type="upload_unverified", created_at__gte=_window(now))
    count = events.count()
    keys = sorted({key or "legacy" for key in events.values_list("event_data__key_id", flat=True)[:1000]})
    return Observation(
        count > 0,
        count,
        0,
        f"{count} request(s) accepted without a valid signature in the last {settings.ALERT_WINDOW_HOURS} h"
        f" (signature enforcement disabled); keys: {', '.join(keys) or '-'}",
    )


def check_dlq_depth(now: dt.datetime) -> Observation:
    depth = dlq_depth()
    threshold = settings.ALERT_DLQ_DEPTH
    return Observation(depth > threshold, depth, threshold, f"DLQ depth {depth} (threshold {threshold})")


def _last_run_failed(event_type: str, what: str) -> Callable[[dt.datetime], Observation]:
    def check(now: dt.datetime) -> Observation:
        last = (
            PipelineEvent.objects.filter(event_type=event_type)
            .order_by("-created_at", "-id")
            .values("status", "created_at", "error_message")
            .first()
        )
        failed = bool(last) and last["status"] == "failure"
        if not last:
            message = f"{what}: no run recorded yet"
        elif failed:
            detail = last["error_message"] or "no detail"
            message = f"{what} failed at {last['created_at']:%Y-%m-%d %H:%M %Z}: {detail}"
        else:
            message = f"{what} last run at {last['created_at']:%Y-%m-%d %H:%M %Z}: {last['status']}"
        return Observation(failed, 1.0 if failed else 0.0, 0.0, message)

    return check


def check_verification_rate(now: dt.datetime) -> Observation:
    figures = verification_figures(Lead.objects.filter(created_at__gte=_window(now)))
    threshold = settings.ALERT_VERIFICATION_RATE
    rate = figures["rate"]
    breached = figures["total"] >= settings.ALERT_MIN_SAMPLE and rate is not None and rate < threshold
    return Observation(
        breached,
        rate,
        threshold,
        f"Verification rate {_percent(rate)} of {figures['total']} leads created in the last"
        f" {settings.ALERT_WINDOW_HOURS} h (threshold {_percent(threshold)})",
    )


def check_reply_rate(now: dt.datetime) -> Observation:
    days = settings.ALERT_REPLY_WINDOW_DAYS
    outcomes = campaign_outcomes(since=now - dt.timedelta(days=days))
    threshold = settings.ALERT_REPLY_RATE
    rate = outcomes["reply_rate"]
    breached = outcomes["fed"] >= settings.ALERT_MIN_SAMPLE and rate is not None and rate < threshold
    return Observation(
        breached,
        rate,
        threshold,
        f"Reply rate {_percent(rate)} of {outcomes['fed']} leads fed in the last {days} days"
        f" (threshold {_percent(threshold)})",
    )


# Why an upload failed (its `upload_failed` event's `reason`, pipeline/ingest/services.py), in words that
# never quote the file: the upload's own error message may quote its header line.
UPLOAD_FAILURE_REASONS = {
    "unreadable_file": "the file cannot be read",
    "internal_error": "internal error",
    "database_unavailable": "the database stayed unavailable",
}
UPLOAD_FAILURES_LISTED = 10


def check_upload_failed(now: dt.datetime) -> Observation:
    failures: dict = {}  # upload id -> its latest failure's event data
    for upload_id, data in (
        PipelineEvent.objects.filter(
            event_type="upload_failed",
            created_at__gte=_window(now),
            upload_id__in=Upload.objects.filter(status=UploadStatus.FAILED).values("id"),
        )
        .order_by("-created_at", "-id")
        .values_list("upload_id", "event_data")
    ):
        failures.setdefault(upload_id, data or {})
    listed = []
    for upload_id, data in list(failures.items())[:UPLOAD_FAILURES_LISTED]:
        reason = UPLOAD_FAILURE_REASONS.get(data.get("reason"), "reason not recorded")
        detail = f", {data['error_class']}" if data.get("error_class") else ""
        listed.append(f"{upload_id} ({reason}{detail})")
    more = len(failures) - len(listed)
    hours = settings.ALERT_WINDOW_HOURS
    message = (
        f"{len(failures)} upload(s) failed in the last {hours} h and were not re-run: {'; '.join(listed)}"
        + (f"; and {more} more" if more > 0 else "")
        if failures
        else f"no upload failed in the last {hours} h (or each was re-run)"
    )
    return Observation(bool(failures), float(len(failures)), 0.0, message)


RULES: tuple[Rule, ...] = (
    Rule("hmac_failure_rate", CRITICAL, "HMAC verification failure rate", check_hmac_failure_rate),
    Rule("upload_unverified", CRITICAL, "Uploads accepted without a valid signature", check_unverified_uploads),
    Rule("dlq_depth", CRITICAL, "DLQ depth", check_dlq_depth),
    Rule("mv_refresh_failed", CRITICAL, "MV refresh failed", _last_run_failed("mv_refreshed", "MV refresh")),
    Rule("feeder_failed", CRITICAL, "Campaign feeder failed", _last_run_failed("feeder_run", "Campaign feeder")),
    Rule("upload_failed", CRITICAL, "Upload failed", check_upload_failed),
    Rule("verification_rate", WARNING, "Verification rate low", check_verification_rate),
    Rule("reply_rate", WARNING, "Reply rate low", check_reply_rate),
    Rule("duplicate_upload_rate", WARNING, "Duplicate upload rate high", check_duplicate_upload_rate),
    # Dead-man's switches (pipeline/monitoring/deadman.py): what should have happened and did not.
    Rule("mv_refresh_missing", CRITICAL, "No MV refresh", check_mv_refresh_missing),
    Rule("feeder_missed", CRITICAL, "No campaign feeder run today", check_feeder_missed),
    Rule("feeder_short", WARNING, "Campaign feeder fed fewer than its limit", check_feeder_short),
    Rule("feeder_dry_run", CRITICAL, "Campaign feeder in dry-run mode", check_feeder_dry_run),
    Rule("uploads_stuck", CRITICAL, "Uploads not done", check_uploads_stuck),
    Rule("dnc_registry_stale", CRITICAL, "DNC registry data too old", check_dnc_registry_stale),
)
RULES_BY_NAME = {rule.name: rule for rule in RULES}


def _apply(rule: Rule, observation: Observation, now: dt.datetime) -> tuple[str, Alert | None]:
    """Open, update or resolve `rule`'s alert. Returns ("fired"|"resolved"|"firing"|"ok", alert)."""
    with transaction.atomic():
        alert = Alert.objects.select_for_update().filter(rule=rule.name, state=AlertState.FIRING).first()
        if observation.breached and alert is None:
            try:
                with transaction.atomic():
                    alert = Alert.objects.create(
                        rule=rule.name,
                        severity=rule.severity,
                        value=observation.value,
                        threshold=observation.threshold,
                        message=observation.message,
                    )
            except IntegrityError:
                return "firing", None  # another evaluator opened it a moment ago: one open alert per rule
            record_event("alert_fired", status="failure", data=_event_data(rule, observation, alert))
            return "fired", alert
        if observation.breached:
            alert.value, alert.message = observation.value, observation.message
            alert.save(update_fields=["value", "message"])
            return "firing", alert
        if alert is not None:
            alert.state, alert.resolved_at = AlertState.RESOLVED, now
            alert.value, alert.message = observation.value, observation.message
            alert.save(update_fields=["state", "resolved_at", "value", "message"])
            record_event("alert_resolved", data=_event_data(rule, observation, alert))
            return "resolved", alert
    return "ok", None


def _event_data(rule: Rule, observation: Observation, alert: Alert) -> dict:
    return {
        "alert_id": alert.pk,
        "rule": rule.name,
        "severity": rule.severity,
        "value": observation.value,
        "threshold": observation.threshold,
        "message": observation.message,
    }


def alerts_evaluate(*, now: dt.datetime | None = None) -> dict:
    """Evaluate every rule once: open, update or resolve alerts, then notify about the changes.

    Changes `alerts`; records `alert_fired` / `alert_resolved`; sends email/webhook notifications."""
    now = now or timezone.now()
    summary: dict = {"evaluated": 0, "fired": [], "resolved": [], "firing": [], "observations": {}}
    changed: list[tuple[str, Alert]] = []
    with service_context():
        for rule in RULES:
            observation = rule.check(now)
            outcome, alert = _apply(rule, observation, now)
            summary["evaluated"] += 1
            summary["observations"][rule.name] = {
                "breached": observation.breached,
                "value": observation.value,
                "threshold": observation.threshold,
            }
            if outcome in ("fired", "resolved"):
                summary[outcome].append(rule.name)
                changed.append((outcome, alert))
            if outcome in ("fired", "firing"):
                summary["firing"].append(rule.name)
    for outcome, alert in changed:
        alert_notify(alert=alert, change=outcome)
    if changed:
        with service_context():
            Alert.objects.filter(pk__in=[alert.pk for _, alert in changed]).update(last_notified_at=timezone.now())
    logger.info(
        "alerts evaluated",
        extra={"fired": summary["fired"], "resolved": summary["resolved"], "firing": summary["firing"]},
    )
    return summary


def alert_text(alert: Alert, change: str) -> str:
    rule = RULES_BY_NAME.get(alert.rule)
    title = rule.title if rule else alert.rule
    marker = "RESOLVED" if change == "resolved" else alert.severity.upper()
    return f"[{marker}] Equity Connect: {title} — {alert.message}"


def alert_payload(alert: Alert, change: str) -> dict:
    """The webhook body: Slack-compatible (`text`) plus the alert's fields for other receivers."""
    return {
        "text": alert_text(alert, change),
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


def alert_notify(*, alert: Alert, change: str) -> dict:
    """Send the email and the webhook for one change. A failing channel is logged, never raised."""
    sent = {"email": False, "webhook": False}
    text = alert_text(alert, change)
    if settings.ALERT_EMAILS:
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
    url = settings.ALERT_WEBHOOK_URL
    if url:
        try:
            response = requests.post(
                url, json=alert_payload(alert, change), timeout=settings.ALERT_WEBHOOK_TIMEOUT_SECONDS
            )
            response.raise_for_status()
            sent["webhook"] = True
        except requests.RequestException as exc:
            logger.error(
                "alert webhook failed",
                extra={"alert_id": alert.pk, "rule": alert.rule, "error": exc.__class__.__name__},
            )
    return sent


def alerts_evaluate_run() -> JobResult:
    """The alerts job: every rule evaluated once, under the job's lock, with its event and heartbeat."""

    def work() -> JobReport:
        summary = alerts_evaluate()
        data = {key: summary[key] for key in ("fired", "resolved", "firing")}
        return JobReport(message=f"alerts evaluated: {data}", data=data)

    return job_run(ALERTS, work)
