"""/metrics: the pipeline's state in Prometheus' text format, read at scrape time (every count uses an index).

The endpoint is anonymous to Django (Prometheus has no session): `metrics_access_allowed` checks the bearer
token and/or the allowed networks, and the collector opens `service_context()` itself.
"""

from __future__ import annotations

import datetime as dt
import hmac
import ipaddress

from django.conf import settings
from django.db.models import Count, Max
from django.utils import timezone
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import CollectorRegistry

from equity_connect.db import service_context
from equity_connect.models import PipelineEvent
from leads.models import CampaignStatus, Lead
from pipeline.intake.services import SIGNATURE_FAILURE_REASONS, SIGNATURE_FAILURE_STATUS
from pipeline.models import Alert, AlertState, DLQStatus, JobHeartbeat, PipelineDLQ, Upload, UploadStatus
from security.enforcement import signature_enforcement_disabled_until


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
