"""Alert rules (the seed's Phase 8): evaluated every 5 minutes by the alerts job.

    alerts_evaluate()  ->  {"fired": [...], "resolved": [...], "firing": [...], "observations": {...}}

The seed's seven rules and ours; thresholds are the environment's defaults (settings ALERT_*) unless an operator
saved another value in the admin (pipeline/monitoring/thresholds.py), which wins:
- critical: HMAC verification failure rate > 5% of upload requests in the trailing window; any request let
  through without a valid signature (the rollback escape hatch) in the window; DLQ depth > 100; the last MV
  refresh failed; the last campaign feeder run failed; an upload failed in the trailing window and was not
  re-run (one incident however many fail: its message lists them, by id and reason).
- warning: verification rate < 80% of the leads created in the window, over at least
  ALERT_VERIFICATION_MIN_LEADS of them (so one small upload never fires it: only a low rate sustained over
  the window's uploads does); reply rate < 5% of the leads fed in the last ALERT_REPLY_WINDOW_DAYS; duplicate
  upload rate (409 replays) > 10% of upload requests.
A request or reply rate over fewer than ALERT_MIN_SAMPLE events never fires (a quiet night is not an incident).
Then the dead-man's switches of pipeline/monitoring/deadman.py (a missed MV refresh or feeder run, a short feed,
a feeder in dry-run mode, stuck uploads, DNC registry data older than DNC_REGISTRY_MAX_AGE_DAYS).

An `Alert` row is one incident: opened when a rule starts to hold and resolved by itself at the first
evaluation that finds the condition cleared; a partial unique index keeps at most one firing alert per rule, so
a rule that keeps holding updates its open alert instead of opening another. Opening and resolving record
`alert_fired` / `alert_resolved` events and notify once each (never per evaluation), routed by severity:
critical to ALERT_EMAILS and ALERT_WEBHOOK_URL; warning to the webhook, or by e-mail while no webhook is set.
A snoozed rule (pipeline/monitoring/incidents.py) notifies nothing until its snooze ends; then an alert still
firing and not acknowledged sends one reminder.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone

from equity_connect.db import service_context
from equity_connect.events import record_event
from equity_connect.models import PipelineEvent
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
from .incidents import rule_snoozed_until
from .notify import alert_notify
from .thresholds import threshold
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
    return now - dt.timedelta(hours=threshold("ALERT_WINDOW_HOURS"))


def _rate_above(value_key: str, label: str, threshold_name: str) -> Callable[[dt.datetime], Observation]:
    def check(now: dt.datetime) -> Observation:
        limit = threshold(threshold_name)
        counts = upload_request_counts(since=_window(now))
        attempts = counts["attempts"]
        rate = counts[value_key] / attempts if attempts else None
        breached = attempts >= threshold("ALERT_MIN_SAMPLE") and rate is not None and rate > limit
        return Observation(
            breached,
            rate,
            limit,
            f"{label} {_percent(rate)} of {attempts} upload requests in the last {threshold('ALERT_WINDOW_HOURS')} h"
            f" (threshold {_percent(limit)})",
        )

    return check


def check_hmac_failure_rate(now: dt.datetime) -> Observation:
    return _rate_above("signature_failures", "HMAC verification failure rate", "ALERT_HMAC_FAILURE_RATE")(now)


def check_duplicate_upload_rate(now: dt.datetime) -> Observation:
    return _rate_above("duplicates", "Duplicate upload rate", "ALERT_DUPLICATE_UPLOAD_RATE")(now)


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
        f"{count} request(s) accepted without a valid signature in the last {threshold('ALERT_WINDOW_HOURS')} h"
        f" (signature enforcement disabled); keys: {', '.join(keys) or '-'}",
    )


def check_dlq_depth(now: dt.datetime) -> Observation:
    depth = dlq_depth()
    limit = threshold("ALERT_DLQ_DEPTH")
    return Observation(depth > limit, depth, limit, f"DLQ depth {depth} (threshold {limit})")


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
    """Over every lead created in the trailing window, and only once there are ALERT_VERIFICATION_MIN_LEADS of
    them: one small upload with a poor skip-trace is not an incident; a low rate sustained over the window is."""
    hours = threshold("ALERT_WINDOW_HOURS")
    figures = verification_figures(Lead.objects.filter(created_at__gte=_window(now), created_at__lte=now))
    limit = threshold("ALERT_VERIFICATION_RATE")
    minimum = threshold("ALERT_VERIFICATION_MIN_LEADS")
    rate = figures["rate"]
    enough = figures["total"] >= minimum
    breached = enough and rate is not None and rate < limit
    return Observation(
        breached,
        rate,
        limit,
        f"Verification rate {_percent(rate)} of {figures['total']} leads created in the last {hours} h"
        f" (threshold {_percent(limit)}" + ("" if enough else f"; not judged below {minimum} leads") + ")",
    )


def check_reply_rate(now: dt.datetime) -> Observation:
    days = threshold("ALERT_REPLY_WINDOW_DAYS")
    outcomes = campaign_outcomes(since=now - dt.timedelta(days=days))
    limit = threshold("ALERT_REPLY_RATE")
    rate = outcomes["reply_rate"]
    breached = outcomes["fed"] >= threshold("ALERT_MIN_SAMPLE") and rate is not None and rate < limit
    return Observation(
        breached,
        rate,
        limit,
        f"Reply rate {_percent(rate)} of {outcomes['fed']} leads fed in the last {days} days"
        f" (threshold {_percent(limit)})",
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
    hours = threshold("ALERT_WINDOW_HOURS")
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
            snoozed = Alert.objects.filter(rule=rule.name).order_by("-opened_at", "-id").first()
            inherit = snoozed is not None and snoozed.snoozed_until is not None and snoozed.snoozed_until > now
            try:
                with transaction.atomic():
                    alert = Alert.objects.create(
                        rule=rule.name,
                        severity=rule.severity,
                        value=observation.value,
                        threshold=observation.threshold,
                        message=observation.message,
                        # a snooze is on the rule: a new incident opened during it stays quiet too
                        snoozed_until=snoozed.snoozed_until if inherit else None,
                        snoozed_by_id=snoozed.snoozed_by_id if inherit else None,
                    )
            except IntegrityError:
                return "firing", None  # another evaluator opened it a moment ago: one open alert per rule
            record_event("alert_fired", status="failure", data=_event_data(rule, observation, alert))
            return "fired", alert
        if observation.breached:
            alert.value, alert.threshold, alert.message = observation.value, observation.threshold, observation.message
            fields = ["value", "threshold", "message"]
            change = "firing"
            if alert.snoozed_until is not None and alert.snoozed_until <= now:
                # The snooze is over and the incident is still on: one reminder unless someone acknowledged it.
                alert.snoozed_until, alert.snoozed_by = None, None
                fields += ["snoozed_until", "snoozed_by"]
                change = "firing" if alert.acknowledged_at else "reminder"
            alert.save(update_fields=fields)
            return change, alert
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

    Changes `alerts`; records `alert_fired` / `alert_resolved`; sends one notification per change (an incident
    opened, resolved, or still on when its snooze ended), routed by severity, none while the rule is snoozed."""
    now = now or timezone.now()
    summary: dict = {"evaluated": 0, "fired": [], "resolved": [], "firing": [], "observations": {}, "notified": []}
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
            if outcome in ("fired", "resolved", "reminder") and rule_snoozed_until(rule.name, now) is None:
                changed.append((outcome, alert))
            if outcome in ("fired", "firing", "reminder"):
                summary["firing"].append(rule.name)
    for outcome, alert in changed:
        alert_notify(alert=alert, change=outcome, title=RULES_BY_NAME[alert.rule].title)
        summary["notified"].append(alert.rule)
    if changed:
        with service_context():
            Alert.objects.filter(pk__in=[alert.pk for _, alert in changed]).update(last_notified_at=timezone.now())
    logger.info(
        "alerts evaluated",
        extra={"fired": summary["fired"], "resolved": summary["resolved"], "firing": summary["firing"]},
    )
    return summary


def alerts_evaluate_run() -> JobResult:
    """The alerts job: every rule evaluated once, under the job's lock, with its event and heartbeat."""

    def work() -> JobReport:
        summary = alerts_evaluate()
        data = {key: summary[key] for key in ("fired", "resolved", "firing")}
        return JobReport(message=f"alerts evaluated: {data}", data=data)

    return job_run(ALERTS, work)
