"""The rollback plan's escape hatch: signature enforcement off only while a near-future end time is set, and
even then only the signature is waived: a known active key (or the configured legacy secret), the timestamp
window and the content hash still apply, X-Broker-Id is ignored, and every request let through is recorded
and raises the critical alert."""

from datetime import UTC, datetime, timedelta

import pytest

from equity_connect.db import service_context
from equity_connect.models import PipelineEvent
from pipeline.models import Alert, Upload
from pipeline.monitoring.alerts import alerts_evaluate
from tests.factories import BrokerFactory, PartnerKeyFactory
from tests.security.signing_helpers import UPLOADS, get_status, post_upload, rfc3339, signed_headers

BODY = b"mak,address,city,state,zip\nHATCH-1,1 Main St,San Diego,CA,92101\n"
WRONG = "not-the-secret-at-all-but-long-enough-000000"


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    settings.HMAC_SECRET_KEY = ""
    settings.ALERT_EMAILS = []
    settings.ALERT_WEBHOOK_URL = ""


def until(hours: float) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _body(n: int) -> bytes:
    return BODY + f"HATCH-{n + 1},{n} Oak Ave,Fresno,CA,93650\n".encode()


def _events(event_type: str) -> list:
    with service_context():
        return list(PipelineEvent.objects.filter(event_type=event_type).order_by("id"))


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("disabled_until", "expected"),
    [
        ("", 401),  # normal: enforced
        (until(1), 202),  # escape hatch on for the next hour
        (until(48), 401),  # too far ahead: refused, enforcement stays on
        (until(-1), 401),  # expired
        ("next tuesday", 401),  # unparseable
    ],
)
def test_bad_signature_passes_only_while_the_hatch_is_validly_open(client, settings, disabled_until, expected):
    settings.SIGNATURE_ENFORCEMENT_DISABLED_UNTIL = disabled_until
    key = PartnerKeyFactory()
    response = post_upload(client, WRONG, BODY, key_id=key.key_id)
    assert response.status_code == expected
    assert len(_events("upload_unverified")) == (1 if expected == 202 else 0)


@pytest.mark.django_db
def test_the_hatch_waives_only_the_signature(client, settings):
    settings.SIGNATURE_ENFORCEMENT_DISABLED_UNTIL = until(1)
    key = PartnerKeyFactory()
    revoked = PartnerKeyFactory(status="revoked")
    refused = {
        "no key id": post_upload(client, WRONG, _body(1)),
        "unknown key": post_upload(client, WRONG, _body(2), key_id="pk_unknown"),
        "revoked key": post_upload(client, revoked.plain_secret, _body(3), key_id=revoked.key_id),
        "old timestamp": post_upload(
            client, WRONG, _body(4), key_id=key.key_id, timestamp=rfc3339(offset_seconds=-3600)
        ),
        "future timestamp": post_upload(
            client, WRONG, _body(5), key_id=key.key_id, timestamp=rfc3339(offset_seconds=900)
        ),
        "tampered body": post_upload(client, key.plain_secret, _body(6), key_id=key.key_id, content_sha256="0" * 64),
        "unknown key, status read": get_status(client, WRONG, "00000000-0000-0000-0000-000000000000", key_id="pk_x"),
    }
    assert {case: response.status_code for case, response in refused.items()} == {
        "no key id": 400,
        "unknown key": 401,
        "revoked key": 401,
        "old timestamp": 401,
        "future timestamp": 401,
        "tampered body": 400,
        "unknown key, status read": 401,
    }
    assert _events("upload_unverified") == []
    with service_context():
        assert Upload.objects.count() == 0


@pytest.mark.django_db
def test_legacy_mode_needs_the_legacy_secret_configured(client, settings):
    settings.SIGNATURE_ENFORCEMENT_DISABLED_UNTIL = until(1)
    assert post_upload(client, WRONG, _body(1), forms=("v1",)).status_code == 400  # no key id, no legacy secret
    settings.HMAC_SECRET_KEY = "legacy-secret-0123456789abcdef0123456789"
    assert post_upload(client, WRONG, _body(2), forms=("v1",)).status_code == 202
    [event] = _events("upload_unverified")
    assert event.event_data["key_id"] is None and event.event_data["reason"] == "bad_signature"


@pytest.mark.django_db
def test_unsigned_uploads_get_the_default_broker_are_recorded_and_alert(client, settings):
    settings.SIGNATURE_ENFORCEMENT_DISABLED_UNTIL = until(1)
    default, allowed, stranger = BrokerFactory(), BrokerFactory(), BrokerFactory()
    key = PartnerKeyFactory(default_broker=default)
    with service_context():
        key.allowed_brokers.add(allowed)
    unsigned = [
        post_upload(client, WRONG, _body(1), key_id=key.key_id, x_broker_id=str(stranger.pk)),
        post_upload(client, key.plain_secret, _body(2), key_id=key.key_id, forms=("v1",), x_broker_id=str(allowed.pk)),
    ]
    signed = post_upload(client, key.plain_secret, _body(3), key_id=key.key_id, x_broker_id=str(allowed.pk))
    assert [response.status_code for response in [*unsigned, signed]] == [202, 202, 202]
    upload_id = signed.json()["upload_id"]
    status_read = get_status(client, WRONG, upload_id, key_id=key.key_id)
    assert status_read.status_code == 200
    with service_context():
        brokers = [Upload.objects.get(pk=r.json()["upload_id"]).broker_id for r in [*unsigned, signed]]
    assert brokers == [default.pk, default.pk, allowed.pk]  # X-Broker-Id counts only with a valid signature

    events = _events("upload_unverified")
    assert [(e.event_data["reason"], e.event_data["method"], e.event_data["key_id"]) for e in events] == [
        ("bad_signature", "POST", key.key_id),
        ("v1_not_allowed", "POST", key.key_id),
        ("bad_signature", "GET", key.key_id),
    ]
    assert all(e.event_data["enforcement_disabled_until"] and e.status == "failure" for e in events)

    summary = alerts_evaluate()
    assert "upload_unverified" in summary["fired"]
    with service_context():
        alert = Alert.objects.get(rule="upload_unverified", state="firing")
    assert alert.severity == "critical" and alert.value == 3 and key.key_id in alert.message
    post_upload(client, WRONG, _body(4), key_id=key.key_id)
    again = alerts_evaluate()
    assert again["fired"] == [] and "upload_unverified" in again["firing"]
    with service_context():
        assert Alert.objects.filter(rule="upload_unverified").count() == 1


@pytest.mark.django_db
def test_a_valid_signature_with_the_hatch_open_records_nothing(client, settings):
    settings.SIGNATURE_ENFORCEMENT_DISABLED_UNTIL = until(1)
    key = PartnerKeyFactory()
    assert post_upload(client, key.plain_secret, BODY, key_id=key.key_id).status_code == 202
    assert _events("upload_unverified") == []


def test_unverified_requests_still_need_a_signature_header(client, settings, db):
    settings.SIGNATURE_ENFORCEMENT_DISABLED_UNTIL = until(1)
    key = PartnerKeyFactory()
    headers = signed_headers(key.plain_secret, BODY, key_id=key.key_id)
    headers.pop("HTTP_X_SIGNATURE")
    assert client.post(UPLOADS, data=BODY, content_type="text/csv", **headers).status_code == 400
