"""/healthz and /metrics (DESIGN §11, §13): what a load balancer and Prometheus ask.

Heartbeat names (**contract** with the jobs): the django-q2 scheduler's liveness is the `JobHeartbeat`
row named `SCHEDULER_HEARTBEAT` ("scheduler"); the jobs write it (last_seen_at = now) at least every
`HEALTH_SCHEDULER_MAX_AGE_SECONDS`. Each scheduled job may also keep its own row under its schedule name.

Both endpoints are anonymous, so they open `service_context()` here to read counts.
"""

from __future__ import annotations

import datetime as dt
import hmac
import ipaddress
import logging
import time

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.db.models import Count, Max
from django.utils import timezone
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import CollectorRegistry

from equity_connect.db import service_context
from pipeline.enforcement import signature_enforcement_disabled, signature_enforcement_disabled_until  # noqa: F401

logger = logging.getLogger(__name__)

SCHEDULER_HEARTBEAT = "scheduler"

# Rejection reason classes of `upload_rejected` events (pipeline/api.py: `event_data["reason"]`, with the
# answer's `event_data["http_status"]`): a 401 means the request's signature/key/timestamp did not verify;
# a 409 is a replay of content received in the last REPLAY_GUARD_DAYS.
SIGNATURE_FAILURE_REASONS = frozenset({"bad_signature", "unknown_key", "revoked_key", "timestamp_out_of_window"})
DUPLICATE_REASONS = frozenset({"replay"})
SIGNATURE_FAILURE_STATUS = 401
DUPLICATE_STATUS = 409

_migrations_ok_until = 0.0


def migrations_applied(using: str = DEFAULT_DB_ALIAS) -> bool:
    """True when no migration is waiting. A positive answer is cached for a minute (it reads every file)."""
    global _migrations_ok_until
    if time.monotonic() < _migrations_ok_until:
        return True
    connection = connections[using]
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if plan:
        return False
    _migrations_ok_until = time.monotonic() + 60
    return True


def _heartbeat_age(name: str, now: dt.datetime) -> float | None:
    from pipeline.models import JobHeartbeat

    with service_context():
        seen = JobHeartbeat.objects.filter(name=name).values_list("last_seen_at", flat=True).first()
    return None if seen is None else max(0.0, (now - seen).total_seconds())


def health_check(*, now: dt.datetime | None = None, using: str = DEFAULT_DB_ALIAS) -> tuple[bool, dict]:
    """(healthy, report). Healthy = database reachable, no migration pending, scheduler heartbeat fresh."""
    now = now or timezone.now()
    max_age = settings.HEALTH_SCHEDULER_MAX_AGE_SECONDS
    report: dict = {
        "status": "ok",
        "time": now.isoformat(),
        "checks": {
            "database": {"ok": False},
            "migrations": {"ok": False},
            "scheduler": {"ok": False, "heartbeat": SCHEDULER_HEARTBEAT, "max_age_seconds": max_age},
        },
    }
    checks = report["checks"]
    connection = connections[using]
    try:
        started = time.monotonic()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        checks["database"] = {"ok": True, "latency_ms": round((time.monotonic() - started) * 1000, 1)}
    except Exception as exc:  # any driver error means "unreachable" to a load balancer
        logger.warning("healthz: database unreachable", extra={"error": exc.__class__.__name__})
        checks["database"] = {"ok": False, "error": exc.__class__.__name__}
        checks["migrations"]["error"] = "database unreachable"
        checks["scheduler"]["error"] = "database unreachable"
        report["status"] = "unhealthy"
        return False, report
    try:
        checks["migrations"] = {"ok": migrations_applied(using)}
    except Exception as exc:
        checks["migrations"] = {"ok": False, "error": exc.__class__.__name__}
    age = _heartbeat_age(SCHEDULER_HEARTBEAT, now)
    checks["scheduler"].update(
        {
            "ok": age is not None and age <= max_age,
            "age_seconds": None if age is None else round(age, 1),
        }
    )
    until = signature_enforcement_disabled_until(now=now)
    report["signature_enforcement"] = "enforced" if until is None else f"disabled until {until.isoformat()}"
    healthy = all(check["ok"] for check in checks.values())
    report["status"] = "ok" if healthy else "unhealthy"
    return healthy, report


# --- /metrics -------------------------------------------------------------------------------------------


def metrics_access_allowed(*, authorization: str, remote_addr: str) -> bool:
    """METRICS_TOKEN (a bearer token, compared in constant time) and/or METRICS_ALLOWED_NETWORKS (CIDRs).

    With neither set /metrics is open (local development); with either set, one of them must match."""
    token = settings.METRICS_TOKEN
    networks = settings.METRICS_ALLOWED_NETWORKS
    if not token and not networks:
        return True
    if token and authorization.startswith("Bearer "):
        offered = authorization.removeprefix("Bearer ").strip()
        if hmac.compare_digest(offered.encode(), token.encode()):
            return True
    if networks and remote_addr:
        try:
            address = ipaddress.ip_address(remote_addr)
        except ValueError:
            return False
        return any(address in ipaddress.ip_network(network, strict=False) for network in networks)
    return False


def _timestamp(value: dt.datetime | None) -> float:
    return value.timestamp() if value else 0.0


class OpsCollector:
    """Reads the pipeline's state at scrape time (counts are cheap: every one uses an index)."""

    def collect(self):
        from leads.models import CampaignStatus, Lead
        from pipeline.models import Alert, AlertState, DLQStatus, PipelineDLQ, PipelineEvent, Upload, UploadStatus

        now = timezone.now()
        with service_context():
            dlq = dict(PipelineDLQ.objects.values_list("status").annotate(n=Count("id")).order_by())
            uploads = dict(Upload.objects.values_list("status").annotate(n=Count("id")).order_by())
            leads = dict(Lead.objects.values_list("campaign_status").annotate(n=Count("id")).order_by())
            rejections = list(
                PipelineEvent.objects.filter(event_type="upload_rejected")
                .values_list("event_data__reason", "event_data__http_status")
                .annotate(n=Count("id"))
                .order_by()
            )
            last_runs = {
                event_type: PipelineEvent.objects.filter(event_type=event_type)
                .order_by("-created_at", "-id")
                .values("created_at", "status", "duration_ms")
                .first()
                for event_type in ("mv_refreshed", "feeder_run")
            }
            firing = list(Alert.objects.filter(state=AlertState.FIRING).values_list("rule", "severity"))
            from pipeline.models import JobHeartbeat

            heartbeats = dict(JobHeartbeat.objects.values_list("name").annotate(seen=Max("last_seen_at")))

        depth = GaugeMetricFamily("ec_dlq_depth", "DLQ items open or retrying")
        depth.add_metric([], dlq.get(DLQStatus.OPEN, 0) + dlq.get(DLQStatus.RETRYING, 0))
        yield depth
        items = GaugeMetricFamily("ec_dlq_items", "DLQ items by status", labels=["status"])
        for status in DLQStatus:
            items.add_metric([status.value], dlq.get(status.value, 0))
        yield items

        by_status = GaugeMetricFamily("ec_uploads", "Uploads by status", labels=["status"])
        for status in UploadStatus:
            by_status.add_metric([status.value], uploads.get(status.value, 0))
        yield by_status

        rejected = CounterMetricFamily("ec_upload_rejections", "Rejected upload requests by reason", labels=["reason"])
        signature_failures = 0
        by_reason: dict[str, int] = {}
        for reason, status_code, count in rejections:
            reason = str(reason or "unknown")
            by_reason[reason] = by_reason.get(reason, 0) + count
            if reason in SIGNATURE_FAILURE_REASONS or str(status_code) == str(SIGNATURE_FAILURE_STATUS):
                signature_failures += count
        for reason, count in sorted(by_reason.items()):
            rejected.add_metric([reason], count)
        yield rejected
        failures = CounterMetricFamily("ec_signature_failures", "Upload requests whose signature did not verify")
        failures.add_metric([], signature_failures)
        yield failures
        disabled = GaugeMetricFamily(
            "ec_signature_enforcement_disabled", "1 while SIGNATURE_ENFORCEMENT_DISABLED_UNTIL is in force"
        )
        disabled.add_metric([], 0 if signature_enforcement_disabled_until(now=now) is None else 1)
        yield disabled

        lead_gauge = GaugeMetricFamily("ec_leads", "Leads by campaign status", labels=["campaign_status"])
        for status in CampaignStatus:
            lead_gauge.add_metric([status.value], leads.get(status.value, 0))
        yield lead_gauge

        for event_type, name, what in (
            ("mv_refreshed", "ec_mv_refresh", "MV refresh"),
            ("feeder_run", "ec_feeder_run", "campaign feeder run"),
        ):
            last = last_runs[event_type]
            when = GaugeMetricFamily(f"{name}_last_timestamp_seconds", f"When the last {what} finished (0: never)")
            when.add_metric([], _timestamp(last["created_at"]) if last else 0.0)
            yield when
            ok = GaugeMetricFamily(
                f"{name}_last_success", f"1 if the last {what} succeeded, 0 if it failed or never ran"
            )
            ok.add_metric([], 1 if last and last["status"] == "success" else 0)
            yield ok
            duration = GaugeMetricFamily(f"{name}_last_duration_seconds", f"Duration of the last {what}")
            duration.add_metric([], (last["duration_ms"] or 0) / 1000 if last else 0.0)
            yield duration

        alerts = GaugeMetricFamily("ec_alerts_firing", "Alerts firing", labels=["rule", "severity"])
        for rule, severity in firing:
            alerts.add_metric([rule, severity], 1)
        yield alerts

        ages = GaugeMetricFamily("ec_job_heartbeat_age_seconds", "Seconds since each job's heartbeat", labels=["name"])
        for name, seen in sorted(heartbeats.items()):
            ages.add_metric([name], max(0.0, (now - seen).total_seconds()))
        yield ages


def metrics_registry() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(OpsCollector())
    return registry
