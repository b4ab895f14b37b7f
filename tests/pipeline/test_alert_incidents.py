"""Alerts as incidents: one notification per incident (not per evaluation), routed by severity; auto-resolve;
acknowledge and snooze; the verification rate's minimum sample and window; thresholds saved in the database win
over the environment's defaults, with every change recorded. Notifications go to a real HTTP receiver."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.core import mail
from django.utils import timezone

from equity_connect.db import service_context
from equity_connect.events import record_event
from equity_connect.models import PipelineEvent
from leads.models import Lead
from pipeline.models import Alert, AlertThreshold, AlertThresholdChange, PipelineDLQ
from pipeline.monitoring.alerts import alerts_evaluate
from pipeline.monitoring.incidents import AlertActionError, alert_acknowledge, alert_snooze
from pipeline.monitoring.thresholds import ThresholdError, alert_thresholds_save, threshold
from tests.factories import PipelineDLQFactory, RoleUserFactory, StaffUserFactory, VerificationCodeMapFactory
from tests.fakes.receiver import WebhookReceiver
from tests.pipeline.ingest_helpers import csv_of, ingest

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _running(running_system, settings, tmp_path):
    """No dead-man's switch fires; the environment's defaults are the README's; files go to a temporary folder."""
    settings.MEDIA_ROOT = tmp_path
    settings.ALERT_DLQ_DEPTH = 3
    settings.ALERT_WEBHOOK_URL = ""
    settings.ALERT_EMAILS = ["ops@example.com"]


@pytest.fixture
def receiver(settings):
    with WebhookReceiver() as fake:
        settings.ALERT_WEBHOOK_URL = fake.url + "/hooks/alerts"
        yield fake


def fed_without_replies(count: int) -> None:
    with service_context():
        for _ in range(count):
            record_event("campaign_added", lead_id=uuid.uuid4())


def dlq_items(count: int) -> None:
    for _ in range(count):
        PipelineDLQFactory(upload=None)


def dlq_close(count: int) -> None:
    with service_context():
        PipelineDLQ.objects.filter(pk__in=PipelineDLQ.objects.filter(status="open").values("pk")[:count]).update(
            status="discarded"
        )


def alerts(rule: str) -> list[Alert]:
    with service_context():
        return list(Alert.objects.filter(rule=rule).order_by("pk"))


def changes(receiver, rule: str) -> list[str]:
    receiver.wait_answered()
    return [request["body"]["change"] for request in receiver.requests if request["body"]["rule"] == rule]


def test_one_notification_per_incident_however_many_evaluations(receiver):
    dlq_items(4)
    for extra in range(6):  # six evaluations while it holds, the value changing each time
        dlq_items(extra and 1)
        summary = alerts_evaluate()
        assert "dlq_depth" in summary["firing"]
    assert changes(receiver, "dlq_depth") == ["fired"]  # critical: the webhook ...
    assert len(mail.outbox) == 1  # ... and the e-mail, once
    [alert] = alerts("dlq_depth")
    assert alert.value == 9 and alert.message == "DLQ depth 9 (threshold 3)"

    dlq_close(7)  # the condition clears: the incident resolves by itself, one notification
    summary = alerts_evaluate()
    assert summary["resolved"] == ["dlq_depth"]
    alerts_evaluate()
    assert changes(receiver, "dlq_depth") == ["fired", "resolved"]
    assert len(mail.outbox) == 2
    [alert] = alerts("dlq_depth")
    assert alert.state == "resolved" and alert.resolved_at is not None

    dlq_items(5)  # a new incident: a new alert, notified once
    alerts_evaluate()
    alerts_evaluate()
    assert [a.state for a in alerts("dlq_depth")] == ["resolved", "firing"]
    assert changes(receiver, "dlq_depth") == ["fired", "resolved", "fired"]


def test_severity_routing(receiver, settings):
    # warning + webhook: the webhook only
    fed_without_replies(5)
    settings.ALERT_MIN_SAMPLE = 5
    assert alerts_evaluate()["fired"] == ["reply_rate"]
    assert changes(receiver, "reply_rate") == ["fired"] and mail.outbox == []

    # critical: both
    dlq_items(4)
    alerts_evaluate()
    assert changes(receiver, "dlq_depth") == ["fired"] and len(mail.outbox) == 1


def test_warnings_go_by_email_when_no_webhook_is_configured(settings):
    settings.ALERT_MIN_SAMPLE = 5
    fed_without_replies(5)
    assert alerts_evaluate()["fired"] == ["reply_rate"]
    assert len(mail.outbox) == 1 and "[WARNING]" in mail.outbox[0].subject


def test_a_single_small_upload_does_not_fire_a_sustained_low_rate_fires_once(receiver, settings):
    """The verification rate needs ALERT_VERIFICATION_MIN_LEADS (200) leads in the window: one upload of 40 rows
    with 10% verified is not an incident; the same rate sustained over the day's uploads is, exactly once."""
    settings.ALERT_VERIFICATION_MIN_LEADS = 200
    VerificationCodeMapFactory(channel="email", code="ES01", is_verified=True)
    serial = iter(range(10_000))

    def upload_and_evaluate() -> dict:
        rows = [
            {
                "mak": f"MAK{next(serial):05d}",
                "first_name": "Pat",
                "email": f"pat{index}@example.com",
                "email_verification_codes": "ES01" if index % 10 == 0 else "",
            }
            for index in range(40)
        ]
        upload = ingest(csv_of(rows))
        assert upload.status == "done" and upload.leads_created == 40
        return alerts_evaluate()

    first = upload_and_evaluate()
    assert first["observations"]["verification_rate"]["value"] == pytest.approx(0.1)
    assert "verification_rate" not in first["firing"] and alerts("verification_rate") == []

    # Uploads through the day: every evaluation after each one; older leads move back in time (within the window).
    fired_after = []
    for upload_number in range(2, 10):
        with service_context():
            Lead.objects.update(created_at=timezone.now() - dt.timedelta(hours=2 * upload_number))
        summary = upload_and_evaluate()
        if "verification_rate" in summary["fired"]:
            fired_after.append(upload_number)
    assert fired_after == [5]  # 5 x 40 = 200 leads: judged from then on, and fired once
    [alert] = alerts("verification_rate")
    assert alert.state == "firing" and alert.severity == "warning"
    assert changes(receiver, "verification_rate") == ["fired"]  # one notification, warning: the webhook only
    assert mail.outbox == []
    with service_context():
        fired = PipelineEvent.objects.filter(event_type="alert_fired", event_data__rule="verification_rate")
        assert fired.count() == 1

    # Leads older than the window do not count: the day's low rate ages out and the alert resolves by itself.
    with service_context():
        Lead.objects.update(created_at=timezone.now() - dt.timedelta(hours=settings.ALERT_WINDOW_HOURS + 1))
    assert alerts_evaluate()["resolved"] == ["verification_rate"]
    assert changes(receiver, "verification_rate") == ["fired", "resolved"]


def test_a_threshold_saved_in_the_database_wins_over_the_environment_default(settings):
    staff = StaffUserFactory()
    settings.ALERT_DLQ_DEPTH = 3  # the environment's default
    dlq_items(5)
    with service_context():
        assert threshold("ALERT_DLQ_DEPTH") == 3
        alert_thresholds_save(values={"ALERT_DLQ_DEPTH": "10"}, user=staff)
        assert threshold("ALERT_DLQ_DEPTH") == 10
    summary = alerts_evaluate()
    assert "dlq_depth" not in summary["firing"] and summary["observations"]["dlq_depth"]["threshold"] == 10

    with service_context():  # cleared: back to the environment's default
        alert_thresholds_save(values={"ALERT_DLQ_DEPTH": ""}, user=staff)
        assert not AlertThreshold.objects.exists()
    assert alerts_evaluate()["fired"] == ["dlq_depth"]

    with service_context():
        history = [
            (c.name, c.old_value, c.new_value, c.environment_default, c.changed_by_id)
            for c in AlertThresholdChange.objects.order_by("id")
        ]
        events = PipelineEvent.objects.filter(event_type="alert_threshold_changed").count()
    assert history == [
        ("ALERT_DLQ_DEPTH", None, 10.0, 3.0, staff.pk),
        ("ALERT_DLQ_DEPTH", 10.0, None, 3.0, staff.pk),
    ]
    assert events == 2


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("ALERT_DLQ_DEPTH", "lots", "is not a number"),
        ("ALERT_DLQ_DEPTH", "2.5", "whole number"),
        ("ALERT_VERIFICATION_RATE", "150%", "between 0% and 100%"),
        ("ALERT_WINDOW_HOURS", "0", "between 1 and 744"),
        ("ALERT_MIN_SAMPLE", "nan", "is not a number"),
        ("NOT_A_SETTING", "1", "not a threshold"),
    ],
)
def test_bad_threshold_values_are_refused_and_nothing_is_saved(name, text, message):
    with service_context(), pytest.raises(ThresholdError, match=message):
        alert_thresholds_save(values={"ALERT_REPLY_RATE": "0.2", name: text}, user=None)
    with service_context():
        assert not AlertThreshold.objects.exists() and not AlertThresholdChange.objects.exists()


def test_a_rate_may_be_typed_as_a_percentage():
    with service_context():
        alert_thresholds_save(values={"ALERT_VERIFICATION_RATE": "65%"}, user=None)
        assert threshold("ALERT_VERIFICATION_RATE") == pytest.approx(0.65)


def test_the_thresholds_page_shows_the_default_beside_the_saved_value(client, settings):
    settings.ALERT_DLQ_DEPTH = 3
    staff = RoleUserFactory(role="ops")
    client.force_login(staff)
    url = "/admin/pipeline/alert/thresholds/"
    page = client.get(url)
    assert page.status_code == 200
    assert 'id="threshold-ALERT_DLQ_DEPTH"' in page.content.decode()

    response = client.post(url, {"ALERT_DLQ_DEPTH": "25", "ALERT_VERIFICATION_RATE": "0.7"})
    assert response.status_code == 302
    body = client.get(url).content.decode()
    row = body.split('id="threshold-ALERT_DLQ_DEPTH"', 1)[1].split("</tr>", 1)[0]
    assert '<td class="default">3</td>' in row and 'value="25"' in row and "(saved)" in row
    assert staff.email in body.split('id="threshold-history"', 1)[1]

    bad = client.post(url, {"ALERT_DLQ_DEPTH": "-1"})
    assert bad.status_code == 400 and "must be between" in bad.content.decode()
    assert 'value="-1"' in bad.content.decode()  # the operator's input is kept to correct
    with service_context():
        assert AlertThreshold.objects.get(name="ALERT_DLQ_DEPTH").value == 25


def test_acknowledge_records_who_when_and_the_note(client):
    dlq_items(4)
    alerts_evaluate()
    [alert] = alerts("dlq_depth")
    staff = RoleUserFactory(role="ops")
    client.force_login(staff)
    response = client.post(f"/admin/pipeline/alert/{alert.pk}/acknowledge/", {"note": "clearing the DLQ"})
    assert response.status_code == 302
    [alert] = alerts("dlq_depth")
    assert alert.acknowledged_by_id == staff.pk and alert.acknowledge_note == "clearing the DLQ"
    assert timezone.now() - alert.acknowledged_at < dt.timedelta(minutes=1)
    assert alert.state == "firing"  # acknowledging does not resolve: the condition does
    page = client.get(f"/admin/pipeline/alert/{alert.pk}/change/").content.decode()
    assert "clearing the DLQ" in page and staff.email in page
    with service_context():
        assert PipelineEvent.objects.filter(event_type="alert_acknowledged", event_data__alert_id=alert.pk).exists()

    dlq_close(4)
    alerts_evaluate()
    with service_context(), pytest.raises(AlertActionError, match="already resolved"):
        alert_acknowledge(alert=alert, user=staff, note="late")
    assert client.get("/admin/pipeline/alert/999999/change/").status_code == 302  # the admin's "does not exist"
    assert client.post("/admin/pipeline/alert/999999/acknowledge/").status_code == 404


def test_a_snoozed_rule_notifies_nothing_then_reminds_once(receiver):
    staff = StaffUserFactory()
    dlq_items(4)
    alerts_evaluate()
    [alert] = alerts("dlq_depth")
    now = timezone.now()
    with service_context():
        alert_snooze(alert=alert, user=staff, until=now + dt.timedelta(hours=1))
    dlq_close(4)
    assert alerts_evaluate()["resolved"] == ["dlq_depth"]  # resolved quietly
    dlq_items(4)
    assert alerts_evaluate()["fired"] == ["dlq_depth"]  # a new incident during the snooze: quiet too
    assert changes(receiver, "dlq_depth") == ["fired"]

    later = now + dt.timedelta(hours=1, minutes=5)
    alerts_evaluate(now=later)  # the snooze is over, still firing, nobody acknowledged: one reminder
    alerts_evaluate(now=later + dt.timedelta(minutes=5))
    assert changes(receiver, "dlq_depth") == ["fired", "reminder"]
    assert receiver.requests[-1]["body"]["text"].startswith("[STILL FIRING]")

    with service_context(), pytest.raises(AlertActionError, match="at most 7 days"):
        alert_snooze(alert=alert, user=staff, until=now + dt.timedelta(days=8))
    with service_context(), pytest.raises(AlertActionError, match="in the future"):
        alert_snooze(alert=alert, user=staff, until=now - dt.timedelta(minutes=1))
