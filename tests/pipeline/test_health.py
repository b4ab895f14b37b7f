"""/healthz (200 when well; 503 when the database is unreachable or the scheduler heartbeat is stale) and
/metrics (Prometheus text, the listed series, the token and allowed-networks protection). Through the real
middleware, anonymously, as a load balancer and Prometheus call them."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import subprocess
import sys
import textwrap

import pytest
from django.conf import settings as django_settings
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from equity_connect.db import service_context
from pipeline.jobs import SCHEDULER_HEARTBEAT
from pipeline.models import JobHeartbeat
from pipeline.monitoring.health import migrations_applied
from security.enforcement import signature_enforcement_disabled
from tests.factories import (
    AlertFactory,
    JobHeartbeatFactory,
    LeadFactory,
    PipelineDLQFactory,
    PipelineEventFactory,
    UploadFactory,
)

pytestmark = pytest.mark.django_db


def beat(age: dt.timedelta) -> None:
    JobHeartbeatFactory(name=SCHEDULER_HEARTBEAT)
    with service_context():
        JobHeartbeat.objects.filter(name=SCHEDULER_HEARTBEAT).update(last_seen_at=timezone.now() - age)


def test_healthz_ok(client):
    beat(dt.timedelta(seconds=30))
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["migrations"] == {"ok": True}
    scheduler = body["checks"]["scheduler"]
    assert scheduler["ok"] is True and scheduler["heartbeat"] == "scheduler" and 25 <= scheduler["age_seconds"] < 120
    assert "signature_enforcement" not in body
    assert response["Cache-Control"].startswith("max-age=0")


def test_healthz_stale_heartbeat_is_503(client, settings):
    settings.HEALTH_SCHEDULER_MAX_AGE_SECONDS = 600
    beat(dt.timedelta(minutes=11))
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unhealthy" and body["checks"]["scheduler"]["ok"] is False
    assert body["checks"]["database"]["ok"] is True


def test_healthz_without_any_heartbeat_is_503(client):
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["scheduler"] == {
        "ok": False,
        "heartbeat": "scheduler",
        "max_age_seconds": django_settings.HEALTH_SCHEDULER_MAX_AGE_SECONDS,
        "age_seconds": None,
    }


def test_migrations_check_reads_the_real_plan():
    assert migrations_applied() is True


def test_healthz_database_unreachable_is_503(tmp_path):
    """A real process whose DATABASE_URL points at a socket nobody listens on: the endpoint still answers."""
    script = textwrap.dedent("""
        import json, django
        django.setup()
        from django.test.utils import setup_test_environment
        setup_test_environment()
        from django.test import Client
        response = Client().get("/healthz")
        print(json.dumps({"status": response.status_code, "body": response.json()}))
    """)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "equity_connect.settings.test",
        "DATABASE_URL": f"postgres://equity_app@{str(tmp_path).replace('/', '%2F')}:5432/equity_connect",
        "DATABASE_ADMIN_URL": f"postgres://equity_app@{str(tmp_path).replace('/', '%2F')}:5432/equity_connect",
        "LOG_LEVEL": "CRITICAL",
    }
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=django_settings.BASE_DIR,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["status"] == 503
    assert result["body"]["status"] == "unhealthy"
    assert result["body"]["checks"]["database"]["ok"] is False
    assert result["body"]["checks"]["database"]["error"] == "OperationalError"


# --- /metrics --------------------------------------------------------------------------------------------


def _families(response) -> dict:
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    return {family.name: family for family in text_string_to_metric_families(response.content.decode())}


def _value(families, metric, /, **labels):
    for family in families.values():
        for sample in family.samples:
            if sample.name == metric and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    raise AssertionError(f"no sample {metric} {labels}")


@pytest.fixture
def pipeline_state():
    for status in ("open", "open", "retrying", "discarded"):
        PipelineDLQFactory(status=status, upload=None)
    UploadFactory(status="done")
    UploadFactory(status="done")
    UploadFactory(status="failed")
    LeadFactory(campaign_status="queued")
    LeadFactory(campaign_status="queued")
    LeadFactory(campaign_status="active")
    PipelineEventFactory(
        event_type="upload_rejected", status="failure", event_data={"reason": "bad_signature", "http_status": 401}
    )
    PipelineEventFactory(
        event_type="upload_rejected", status="failure", event_data={"reason": "unknown_key", "http_status": 401}
    )
    PipelineEventFactory(
        event_type="upload_rejected", status="failure", event_data={"reason": "replay", "http_status": 409}
    )
    PipelineEventFactory(
        event_type="upload_rejected",
        status="failure",
        event_data={"reason": "content_hash_mismatch", "http_status": 400},
    )
    PipelineEventFactory(event_type="mv_refreshed", status="success", duration_ms=3400)
    PipelineEventFactory(event_type="feeder_run", status="failure", duration_ms=1200)
    AlertFactory(rule="feeder_failed", severity="critical")
    beat(dt.timedelta(seconds=5))


def test_metrics_series(client, pipeline_state):
    families = _families(client.get("/metrics"))
    assert _value(families, "ec_dlq_depth") == 3
    assert _value(families, "ec_dlq_items", status="discarded") == 1
    assert _value(families, "ec_uploads", status="done") == 2
    assert _value(families, "ec_uploads", status="failed") == 1
    assert _value(families, "ec_uploads", status="processing") == 0
    assert _value(families, "ec_signature_failures_total") == 2
    assert _value(families, "ec_upload_rejections_total", reason="replay") == 1
    assert _value(families, "ec_leads", campaign_status="queued") == 2
    assert _value(families, "ec_leads", campaign_status="active") == 1
    assert _value(families, "ec_leads", campaign_status="bounced") == 0
    assert _value(families, "ec_mv_refresh_last_success") == 1
    assert _value(families, "ec_mv_refresh_last_duration_seconds") == 3.4
    assert _value(families, "ec_mv_refresh_last_timestamp_seconds") == pytest.approx(
        timezone.now().timestamp(), abs=120
    )
    assert _value(families, "ec_feeder_run_last_success") == 0
    assert _value(families, "ec_feeder_run_last_timestamp_seconds") > 0
    assert _value(families, "ec_alerts_firing", rule="feeder_failed", severity="critical") == 1
    assert _value(families, "ec_job_heartbeat_age_seconds", name="scheduler") < 60
    assert _value(families, "ec_signature_enforcement_disabled") == 0


def test_metrics_with_nothing_recorded(client):
    families = _families(client.get("/metrics"))
    assert _value(families, "ec_dlq_depth") == 0
    assert _value(families, "ec_mv_refresh_last_timestamp_seconds") == 0
    assert _value(families, "ec_feeder_run_last_success") == 0


@pytest.mark.parametrize(
    ("token", "networks", "headers", "remote_addr", "expected"),
    [
        ("s3cret-metrics-token", [], {}, "127.0.0.1", 401),
        ("s3cret-metrics-token", [], {"HTTP_AUTHORIZATION": "Bearer wrong"}, "127.0.0.1", 401),
        ("s3cret-metrics-token", [], {"HTTP_AUTHORIZATION": "s3cret-metrics-token"}, "127.0.0.1", 401),
        ("s3cret-metrics-token", [], {"HTTP_AUTHORIZATION": "Bearer s3cret-metrics-token"}, "127.0.0.1", 200),
        ("", ["10.0.0.0/8"], {}, "10.1.2.3", 200),
        ("", ["10.0.0.0/8"], {}, "192.168.1.9", 401),
        ("s3cret-metrics-token", ["10.0.0.0/8"], {}, "10.1.2.3", 200),
        (
            "s3cret-metrics-token",
            ["10.0.0.0/8"],
            {"HTTP_AUTHORIZATION": "Bearer s3cret-metrics-token"},
            "192.168.1.9",
            200,
        ),
        ("", [], {}, "203.0.113.5", 200),
    ],
)
def test_metrics_protection(client, settings, token, networks, headers, remote_addr, expected):
    settings.METRICS_TOKEN = token
    settings.METRICS_ALLOWED_NETWORKS = networks
    response = client.get("/metrics", REMOTE_ADDR=remote_addr, **headers)
    assert response.status_code == expected
    if expected == 401:
        assert b"ec_dlq_depth" not in response.content


# --- the rollback setting ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offset", "expected"),
    [
        (None, False),
        (dt.timedelta(hours=2), True),
        (dt.timedelta(minutes=-1), False),
        (dt.timedelta(hours=25), False),
        ("garbage", False),
        ("naive", False),
    ],
)
def test_signature_enforcement_disable_is_time_limited(settings, caplog, offset, expected):
    now = timezone.now()
    if offset is None:
        settings.SIGNATURE_ENFORCEMENT_DISABLED_UNTIL = ""
    elif offset == "garbage":
        settings.SIGNATURE_ENFORCEMENT_DISABLED_UNTIL = "tomorrow-ish"
    elif offset == "naive":
        settings.SIGNATURE_ENFORCEMENT_DISABLED_UNTIL = (now + dt.timedelta(hours=1)).replace(tzinfo=None).isoformat()
    else:
        settings.SIGNATURE_ENFORCEMENT_DISABLED_UNTIL = (
            (now + offset).astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        )
    with caplog.at_level(logging.WARNING, logger="equity_connect.security.enforcement"):
        assert signature_enforcement_disabled(now=now) is expected
    if expected:
        assert "DISABLED" in caplog.text


def test_disabled_enforcement_shows_on_metrics_and_to_operators_not_on_healthz(client, settings):
    """/healthz is anonymous: it must not tell anyone when unsigned uploads go through."""
    from io import StringIO

    from django.core.management import call_command

    beat(dt.timedelta(seconds=1))
    until = (timezone.now() + dt.timedelta(hours=1)).astimezone(dt.UTC).replace(microsecond=0)
    settings.SIGNATURE_ENFORCEMENT_DISABLED_UNTIL = until.isoformat()
    response = client.get("/healthz")
    assert response.status_code == 200
    assert "signature_enforcement" not in response.json()
    assert "disabled" not in response.content.decode() and until.isoformat() not in response.content.decode()
    assert _value(_families(client.get("/metrics")), "ec_signature_enforcement_disabled") == 1
    out = StringIO()
    call_command("healthcheck", stdout=out)
    assert json.loads(out.getvalue())["signature_enforcement"] == f"disabled until {until.isoformat()}"


def test_healthz_and_metrics_work_for_a_logged_in_user_too(client):
    """They run outside the request's database context, so a staff session changes nothing."""
    from tests.factories import StaffUserFactory

    beat(dt.timedelta(seconds=1))
    client.force_login(StaffUserFactory())
    assert client.get("/healthz").status_code == 200
    assert _value(_families(client.get("/metrics")), "ec_dlq_depth") == 0
