"""Each alert rule fires on crafted data and resolves when the condition stops; one open alert per rule;
notifications reach a real HTTP server on 127.0.0.1 and the mail outbox."""

from __future__ import annotations

import datetime as dt
import threading
import uuid

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone

from equity_connect.db import service_context
from equity_connect.events import record_event
from equity_connect.models import PipelineEvent
from leads.models import Lead
from pipeline.models import Alert, PipelineDLQ, Upload
from pipeline.monitoring.alerts import RULES, alerts_evaluate
from tests.factories import AlertFactory, LeadFactory, PipelineDLQFactory, UploadFactory, backdate_events
from tests.fakes.receiver import WebhookReceiver
from tests.pg import blocked_by
from tests.pg import connect as second_connection
from tests.waiting import wait_for

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def thresholds(settings):
    settings.ALERT_MIN_SAMPLE = 4
    settings.ALERT_VERIFICATION_MIN_LEADS = 4
    settings.ALERT_DLQ_DEPTH = 3
    settings.ALERT_WEBHOOK_URL = ""
    settings.ALERT_EMAILS = []
    return settings


@pytest.fixture(autouse=True)
def _running(running_system):
    """No dead-man's switch fires: each test sees only the rules it is about."""


def events(event_type: str, count: int, **fields) -> None:
    with service_context():
        for _ in range(count):
            record_event(event_type, **fields)


# --- crafted data: (make it breach, make it heal) per rule ------------------------------------------------


def hmac_breach():
    events("upload_received", 9)
    events("upload_rejected", 1, status="failure", data={"reason": "bad_signature", "http_status": 401})  # 1/10


def hmac_heal():
    events("upload_received", 15)  # 1/25 = 4%


def dlq_breach():
    for _ in range(4):
        PipelineDLQFactory(upload=None)  # 4 > 3


def dlq_heal():
    with service_context():
        PipelineDLQ.objects.filter(pk__in=PipelineDLQ.objects.values("pk")[:2]).update(status="discarded")


def mv_breach():
    events("mv_refreshed", 1)
    events("mv_refreshed", 1, status="failure", error_message="lock timeout")


def mv_heal():
    events("mv_refreshed", 1)


def feeder_breach():
    events("feeder_run", 1, status="failure", error_message="Instantly 500")


def feeder_heal():
    events("feeder_run", 1)


def verification_breach():
    LeadFactory(email_verified=True)
    for _ in range(3):
        LeadFactory(email_verified=False, phone_verified=False)  # 1/4 = 25% < 80%


def verification_heal():
    with service_context():
        Lead.objects.update(phone_verified=True)


FED = [uuid.uuid4() for _ in range(5)]


def reply_breach():
    for lead_id in FED:
        events("campaign_added", 1, lead_id=lead_id)  # 0/5 replied


def reply_heal():
    events("email_replied", 1, lead_id=FED[0])  # 1/5 = 20%


def duplicate_breach():
    events("upload_received", 3)
    events("upload_rejected", 1, status="failure", data={"reason": "replay", "http_status": 409})  # 1/4


def duplicate_heal():
    events("upload_received", 10)  # 1/14 = 7%


def unverified_breach():
    events("upload_unverified", 1, status="failure", data={"reason": "bad_signature", "key_id": "pk_a"})


def unverified_heal():
    with service_context():  # out of the window: the hatch was closed a day ago
        backdate_events(
            PipelineEvent.objects.filter(event_type="upload_unverified"), timezone.now() - dt.timedelta(hours=25)
        )


def upload_failed_breach():
    upload = UploadFactory(status="failed")
    events("upload_failed", 1, upload_id=upload.id, status="failure", data={"reason": "unreadable_file"})


def upload_failed_heal():
    with service_context():
        Upload.objects.update(status="done")  # re-run (`manage.py process_upload`) and done


CASES = {
    "hmac_failure_rate": (hmac_breach, hmac_heal),
    "upload_unverified": (unverified_breach, unverified_heal),
    "dlq_depth": (dlq_breach, dlq_heal),
    "mv_refresh_failed": (mv_breach, mv_heal),
    "feeder_failed": (feeder_breach, feeder_heal),
    "verification_rate": (verification_breach, verification_heal),
    "reply_rate": (reply_breach, reply_heal),
    "duplicate_upload_rate": (duplicate_breach, duplicate_heal),
    "upload_failed": (upload_failed_breach, upload_failed_heal),
}


def test_the_seven_rules_of_the_seed_and_the_dead_mans_switches():
    assert {rule.name: rule.severity for rule in RULES} == {
        "mv_refresh_missing": "critical",
        "feeder_missed": "critical",
        "feeder_short": "warning",
        "feeder_dry_run": "critical",
        "uploads_stuck": "critical",
        "dnc_registry_stale": "critical",
        "hmac_failure_rate": "critical",
        "upload_unverified": "critical",
        "dlq_depth": "critical",
        "mv_refresh_failed": "critical",
        "feeder_failed": "critical",
        "verification_rate": "warning",
        "reply_rate": "warning",
        "duplicate_upload_rate": "warning",
        "upload_failed": "critical",
    }


def test_nothing_fires_on_a_quiet_system():
    summary = alerts_evaluate()
    assert summary["evaluated"] == len(RULES) == 15 and summary["fired"] == [] and summary["firing"] == []


def _alerts(rule):
    with service_context():
        return list(Alert.objects.filter(rule=rule).order_by("pk"))


def _event_count(event_type, rule):
    with service_context():
        return PipelineEvent.objects.filter(event_type=event_type, event_data__rule=rule).count()


@pytest.mark.parametrize("rule", list(CASES))
def test_rule_fires_once_and_resolves(rule):
    breach, heal = CASES[rule]
    breach()
    summary = alerts_evaluate()
    assert summary["fired"] == [rule], summary["observations"]
    [alert] = _alerts(rule)
    assert alert.state == "firing" and alert.severity == {r.name: r.severity for r in RULES}[rule]
    assert alert.message and alert.threshold is not None

    # Still breached: the open alert is updated, no second one is opened, no second notification event.
    again = alerts_evaluate()
    assert again["fired"] == [] and rule in again["firing"]
    assert len(_alerts(rule)) == 1
    assert _event_count("alert_fired", rule) == 1

    heal()
    healed = alerts_evaluate()
    assert healed["resolved"] == [rule], healed["observations"]
    [alert] = _alerts(rule)
    assert alert.state == "resolved" and alert.resolved_at is not None
    assert _event_count("alert_resolved", rule) == 1

    # It can fire again later: a new alert, the old one kept as history.
    if rule == "upload_failed":
        upload_failed_breach()
        assert alerts_evaluate()["fired"] == [rule]
        assert [a.state for a in _alerts(rule)] == ["resolved", "firing"]
    if rule in ("mv_refresh_failed", "feeder_failed"):
        events("mv_refreshed" if rule == "mv_refresh_failed" else "feeder_run", 1, status="failure")
        assert alerts_evaluate()["fired"] == [rule]
        assert [a.state for a in _alerts(rule)] == ["resolved", "firing"]


def test_an_open_alert_blocks_a_second_one():
    existing = AlertFactory(rule="dlq_depth", state="firing")
    dlq_breach()
    summary = alerts_evaluate()
    assert summary["fired"] == [] and "dlq_depth" in summary["firing"]
    [alert] = _alerts("dlq_depth")
    assert alert.pk == existing.pk and alert.value == 4


def test_small_samples_do_not_fire(settings):
    settings.ALERT_MIN_SAMPLE = 50
    settings.ALERT_VERIFICATION_MIN_LEADS = 50
    hmac_breach()
    verification_breach()
    assert alerts_evaluate()["fired"] == []


def test_rate_window_is_trailing(settings):
    hmac_breach()
    with service_context():
        backdate_events(
            PipelineEvent.objects.all(), timezone.now() - dt.timedelta(hours=settings.ALERT_WINDOW_HOURS + 1)
        )
    assert "hmac_failure_rate" not in alerts_evaluate()["fired"]


@pytest.fixture
def webhook_receiver(settings):
    """A real receiver on 127.0.0.1 that records every call; the alert settings point at it."""
    with WebhookReceiver() as receiver:
        settings.ALERT_WEBHOOK_URL = receiver.url + "/hooks/alerts"
        settings.ALERT_EMAILS = ["ops@example.com", "oncall@example.com"]
        yield receiver


def test_webhook_and_email_notifications(webhook_receiver):
    received = webhook_receiver.requests
    dlq_breach()
    alerts_evaluate()

    assert len(received) == 1  # every call the receiver got, whatever its method or path
    fired = received[0]
    assert (fired["method"], fired["path"]) == ("POST", "/hooks/alerts")
    assert fired["headers"]["Content-Type"] == "application/json"
    body = fired["body"]
    assert body["text"].startswith("[CRITICAL] Equity Connect: DLQ depth")
    assert "DLQ depth 4 (threshold 3)" in body["text"]
    assert {k: body[k] for k in ("rule", "severity", "state", "change", "value", "threshold")} == {
        "rule": "dlq_depth",
        "severity": "critical",
        "state": "firing",
        "change": "fired",
        "value": 4.0,
        "threshold": 3.0,
    }
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["ops@example.com", "oncall@example.com"]
    assert "DLQ depth" in mail.outbox[0].subject
    [alert] = _alerts("dlq_depth")
    assert alert.last_notified_at is not None

    alerts_evaluate()  # still firing: no repeat notification
    assert len(received) == 1 and len(mail.outbox) == 1

    dlq_heal()
    alerts_evaluate()
    assert len(received) == 2
    assert received[1]["body"]["text"].startswith("[RESOLVED]")
    assert received[1]["body"]["state"] == "resolved" and received[1]["body"]["resolved_at"]
    assert len(mail.outbox) == 2


def test_a_receiver_that_fails_is_not_called_again_for_the_same_change(webhook_receiver):
    webhook_receiver.script(500)
    dlq_breach()

    assert alerts_evaluate()["fired"] == ["dlq_depth"]
    alerts_evaluate()  # still firing

    assert [r["status"] for r in webhook_receiver.requests] == [500]  # no retry, no repeat
    assert len(mail.outbox) == 1  # the other channel still went out, once


@pytest.mark.django_db(transaction=True)
def test_two_evaluators_at_once_open_one_alert_and_notify_once(webhook_receiver):
    # Two evaluations overlap (two clusters, or the admin's "run now" during the scheduled one). A lock on
    # the alerts table holds both at their first read, so that both then run side by side.
    dlq_breach()
    summaries = []

    def evaluate():
        try:
            summaries.append(alerts_evaluate())
        finally:
            connection.close()

    with second_connection(admin=True, autocommit=False) as holder:
        holder.execute("LOCK TABLE alerts IN EXCLUSIVE MODE")
        holder_pid = holder.info.backend_pid
        threads = [threading.Thread(target=evaluate) for _ in range(2)]
        for thread in threads:
            thread.start()
        wait_for(lambda: len(blocked_by(holder_pid)) == 2, message="both evaluators waiting on the alerts table")
        holder.rollback()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(summary["fired"] for summary in summaries) == [[], ["dlq_depth"]]
    assert all("dlq_depth" in summary["firing"] for summary in summaries)
    assert len(_alerts("dlq_depth")) == 1 and _event_count("alert_fired", "dlq_depth") == 1
    assert len(webhook_receiver.requests) == 1 and len(mail.outbox) == 1


def test_a_dead_webhook_does_not_break_evaluation(settings):
    settings.ALERT_WEBHOOK_URL = "http://127.0.0.1:9/nothing-listens-here"
    settings.ALERT_WEBHOOK_TIMEOUT_SECONDS = 1
    dlq_breach()
    assert alerts_evaluate()["fired"] == ["dlq_depth"]


def test_hmac_alert_from_real_rejected_uploads(client):
    """The upload endpoint's own `upload_rejected` events (bad signatures → 401) drive the HMAC rule."""
    import hashlib

    from tests.factories import PartnerKeyFactory

    key = PartnerKeyFactory()
    body = b"property_address,property_city,property_state,property_zip\n1 Main St,San Diego,CA,92101\n"
    for attempt in range(5):
        response = client.post(
            "/api/v1/uploads",
            data=body,
            content_type="text/csv",
            HTTP_X_CONTENT_SHA256=hashlib.sha256(body).hexdigest(),
            HTTP_X_SIGNATURE_TIMESTAMP=timezone.now().astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            HTTP_X_SIGNATURE=f"sha256={'0' * 63}{attempt}",
            HTTP_X_KEY_ID=key.key_id,
        )
        assert response.status_code == 401
    summary = alerts_evaluate()
    assert "hmac_failure_rate" in summary["fired"]
    assert summary["observations"]["hmac_failure_rate"]["value"] == 1.0


def test_failed_uploads_are_one_incident_listed_by_id_and_reason(webhook_receiver, settings):
    first, second, old = (UploadFactory(status="failed") for _ in range(3))
    events("upload_failed", 1, upload_id=first.id, status="failure", data={"reason": "unreadable_file"})
    assert alerts_evaluate()["fired"] == ["upload_failed"]
    events(
        "upload_failed",
        1,
        upload_id=second.id,
        status="failure",
        data={"reason": "internal_error", "error_class": "IntegrityError"},
    )
    events("upload_failed", 1, upload_id=old.id, status="failure", data={"reason": "unreadable_file"})
    with service_context():
        backdate_events(
            PipelineEvent.objects.filter(upload_id=old.id),
            timezone.now() - dt.timedelta(hours=settings.ALERT_WINDOW_HOURS + 1),
        )
    summary = alerts_evaluate()  # a second failure in the same incident: the message grows, no new notification
    assert summary["fired"] == [] and "upload_failed" in summary["firing"]
    assert summary["observations"]["upload_failed"]["value"] == 2  # the old one is outside the window
    [alert] = _alerts("upload_failed")
    assert alert.message == (
        f"2 upload(s) failed in the last 24 h and were not re-run: {second.id} (internal error, IntegrityError);"
        f" {first.id} (the file cannot be read)"
    )
    assert len(webhook_receiver.requests) == 1 and len(mail.outbox) == 1
    body = webhook_receiver.requests[0]["body"]
    assert body["rule"] == "upload_failed" and body["severity"] == "critical"
    assert (
        body["text"] == f"[CRITICAL] Equity Connect: Upload failed — 1 upload(s) failed in the last 24 h and were"
        f" not re-run: {first.id} (the file cannot be read)"
    )


def test_the_dnc_registry_alert_fires_when_the_newest_import_is_too_old(settings):
    from leads.models import DncRegistryImport
    from pipeline.monitoring.deadman import check_dnc_registry_stale

    now = timezone.now()
    settings.DNC_REGISTRY_MAX_AGE_DAYS = 31
    with service_context():
        DncRegistryImport.objects.create(filename="dnc.txt", imported_at=now - dt.timedelta(days=32))
        assert check_dnc_registry_stale(now).breached
        DncRegistryImport.objects.create(filename="dnc.txt", imported_at=now - dt.timedelta(days=30))
        assert not check_dnc_registry_stale(now).breached
