"""The signed-upload protocol (docs/api.md) as a table: each case is one request and its expected status."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import threading

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone
from django_q.models import OrmQ

from equity_connect.db import service_context
from equity_connect.models import PipelineEvent
from pipeline.models import IngestReplayGuard, Upload
from security import signing
from security.models import PartnerKeyStatus
from tests.factories import BrokerFactory, PartnerKeyFactory
from tests.pg import blocked_by
from tests.pg import connect as second_connection
from tests.security.signing_helpers import UPLOADS, get_status, post_upload, rfc3339, signed_headers
from tests.waiting import wait_for

BODY = b"mak,address,city,state,zip\nM1,1 Main St,San Diego,CA,92101\n"


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    settings.HMAC_SECRET_KEY = ""


@pytest.fixture
def key(db):
    return PartnerKeyFactory()


def _body(n: int) -> bytes:
    return BODY + f"M{n + 100},{n} Oak Ave,Fresno,CA,93650\n".encode()


def _tampered(secret, key_id):
    headers = signed_headers(secret, BODY, key_id=key_id)
    return BODY + b"M9,9 Evil St,X,CA,90001\n", headers


def _changed_timestamp(secret, key_id):
    headers = signed_headers(secret, BODY, key_id=key_id, timestamp=rfc3339(offset_seconds=-100))
    headers["HTTP_X_SIGNATURE_TIMESTAMP"] = rfc3339()
    return BODY, headers


def _drop(name):
    def build(secret, key_id):
        headers = signed_headers(secret, BODY, key_id=key_id)
        headers.pop(name)
        return BODY, headers

    return build


def _set(name, value):
    def build(secret, key_id):
        headers = signed_headers(secret, BODY, key_id=key_id)
        headers[name] = value
        return BODY, headers

    return build


def _signed(offset: float | None = None, **kwargs):
    def build(secret, key_id):
        if offset is not None:
            kwargs["timestamp"] = rfc3339(offset_seconds=offset)
        return BODY, signed_headers(secret, BODY, key_id=key_id, **kwargs)

    return build


def _good_v1_bad_v2(secret, key_id):
    headers = signed_headers(secret, BODY, key_id=key_id, forms=("v1",))
    headers["HTTP_X_SIGNATURE"] = f"v2={'0' * 64} {headers['HTTP_X_SIGNATURE']}"
    return BODY, headers


CASES = [
    # (case, request builder, expected status, rejection reason class or None)
    ("v2 signature", _signed(), 202, None),
    # A keyed request needs v2: v1 binds no time, so a captured request could be replayed (allow_v1 keys and
    # the legacy secret aside: tests below).
    ("v1 signature only (the seed's form)", _signed(forms=("v1",)), 401, "v1_not_allowed"),
    ("both forms", _signed(forms=("v1", "v2")), 202, None),
    ("good v1 beside a bad v2 (only v2 counts)", _good_v1_bad_v2, 401, "bad_signature"),
    ("one bad and one good signature", _set("HTTP_X_SIGNATURE", None), 202, None),  # filled in below
    ("wrong secret", lambda s, k: (BODY, signed_headers("x" * 40, BODY, key_id=k)), 401, "bad_signature"),
    ("timestamp 310 s old", _signed(offset=-310), 401, "timestamp_out_of_window"),
    ("timestamp 310 s in the future", _signed(offset=310), 401, "timestamp_out_of_window"),
    ("timestamp 250 s old (inside the window)", _signed(offset=-250), 202, None),
    ("tampered body", _tampered, 400, "content_hash_mismatch"),
    (
        "content hash of another body",
        _signed(content_sha256=hashlib.sha256(b"other").hexdigest()),
        400,
        "content_hash_mismatch",
    ),
    ("v2 replayed with a changed timestamp", _changed_timestamp, 401, "bad_signature"),
    ("v2 signed for another path", _signed(path="/api/v1/other"), 401, "bad_signature"),
    ("v2 signed for another method", _signed(method="PUT"), 401, "bad_signature"),
    ("missing X-Content-SHA256", _drop("HTTP_X_CONTENT_SHA256"), 400, "missing_header"),
    ("missing X-Signature-Timestamp", _drop("HTTP_X_SIGNATURE_TIMESTAMP"), 400, "missing_header"),
    ("missing X-Signature", _drop("HTTP_X_SIGNATURE"), 400, "missing_header"),
    ("missing X-Key-Id (no legacy secret)", _drop("HTTP_X_KEY_ID"), 400, "missing_header"),
    ("malformed X-Content-SHA256", _set("HTTP_X_CONTENT_SHA256", "abc"), 400, "malformed_header"),
    (
        "upper-case X-Content-SHA256",
        _set("HTTP_X_CONTENT_SHA256", hashlib.sha256(BODY).hexdigest().upper()),
        400,
        "malformed_header",
    ),
    ("malformed timestamp", _set("HTTP_X_SIGNATURE_TIMESTAMP", "yesterday"), 400, "malformed_header"),
    ("unix-seconds timestamp", _set("HTTP_X_SIGNATURE_TIMESTAMP", "1764283800"), 400, "malformed_header"),
    ("malformed signature", _set("HTTP_X_SIGNATURE", "v2=nothex"), 400, "malformed_header"),
    ("signature without scheme", _set("HTTP_X_SIGNATURE", "deadbeef"), 400, "malformed_header"),
    ("unknown scheme only", _set("HTTP_X_SIGNATURE", "md5=" + "0" * 64), 400, "malformed_header"),
    ("unknown key", _set("HTTP_X_KEY_ID", "pk_doesnotexist"), 401, "unknown_key"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("case", "build", "expected", "reason"), CASES, ids=[case[0] for case in CASES])
def test_upload_signature_table(client, key, case, build, expected, reason):
    body, headers = build(key.plain_secret, key.key_id)
    if case == "one bad and one good signature":
        good = signed_headers(key.plain_secret, BODY, key_id=key.key_id)
        headers = {**good, "HTTP_X_SIGNATURE": f"v2={'0' * 64} {good['HTTP_X_SIGNATURE']}"}
    headers = {name: value for name, value in headers.items() if value is not None}
    response = client.post(UPLOADS, data=body, content_type="text/csv", **headers)
    assert response.status_code == expected, response.content
    with service_context():
        rejected = list(PipelineEvent.objects.filter(event_type="upload_rejected"))
        uploads = Upload.objects.count()
    if expected == 202:
        assert set(response.json()) == {"upload_id", "status", "status_url", "content_sha256"}
        assert response.json()["status"] == "received"
        assert uploads == 1 and not rejected
    else:
        assert uploads == 0
        assert [event.event_data["reason"] for event in rejected] == [reason]
        assert rejected[0].status == "failure"
        if reason != "missing_header":
            assert rejected[0].event_data["key_id"] == headers.get("HTTP_X_KEY_ID")


@pytest.mark.django_db
def test_revoked_key_is_refused_and_rotation_keeps_both_keys_working(client):
    old = PartnerKeyFactory()
    new = PartnerKeyFactory(partner=old.partner)
    assert post_upload(client, old.plain_secret, _body(1), key_id=old.key_id).status_code == 202
    assert post_upload(client, new.plain_secret, _body(2), key_id=new.key_id).status_code == 202
    with service_context():
        type(old).objects.filter(pk=old.pk).update(status=PartnerKeyStatus.REVOKED)
    response = post_upload(client, old.plain_secret, _body(3), key_id=old.key_id)
    assert response.status_code == 401
    assert post_upload(client, new.plain_secret, _body(3), key_id=new.key_id).status_code == 202
    with service_context():
        reasons = list(
            PipelineEvent.objects.filter(event_type="upload_rejected").values_list("event_data__reason", flat=True)
        )
        old.refresh_from_db()
    assert reasons == ["revoked_key"]
    assert old.last_used_at is not None


def ingestion_tasks() -> list:
    """The upload ingestion tasks in django-q2's queue (the ORM broker's table): every enqueue."""
    tasks = [queued.task for queued in OrmQ.objects.all()]
    return [task["args"] for task in tasks if task["func"] == "pipeline.tasks.upload_process"]


@pytest.mark.django_db
def test_duplicate_content_is_409_with_the_earlier_upload_id(client, key, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        first = post_upload(client, key.plain_secret, BODY, key_id=key.key_id)
    with django_capture_on_commit_callbacks(execute=True) as later:
        second = post_upload(client, key.plain_secret, BODY, key_id=key.key_id, timestamp=rfc3339(offset_seconds=-5))
    assert first.status_code == 202
    assert second.status_code == 409
    assert second.json()["upload_id"] == first.json()["upload_id"]
    assert later == []  # the 409 enqueued nothing
    assert ingestion_tasks() == [(first.json()["upload_id"],)]  # one ingestion, of the first upload
    with service_context():
        assert Upload.objects.count() == 1
        assert PipelineEvent.objects.filter(event_type="upload_rejected", event_data__reason="replay").count() == 1
        assert PipelineEvent.objects.filter(event_type="upload_received").count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_same_content_twice_at_once_is_accepted_once(key):
    # A partner's retry overlaps its first attempt. A lock on the replay guard table holds both requests at
    # their claim, so that both claims then run side by side on two connections.
    answers = []

    def send(offset):
        try:
            answers.append(
                post_upload(
                    Client(), key.plain_secret, BODY, key_id=key.key_id, timestamp=rfc3339(offset_seconds=offset)
                )
            )
        finally:
            connection.close()

    with second_connection(admin=True, autocommit=False) as holder:
        holder.execute("LOCK TABLE ingest_replay_guard IN EXCLUSIVE MODE")
        threads = [threading.Thread(target=send, args=(offset,)) for offset in (0, -5)]
        for thread in threads:
            thread.start()
        wait_for(
            lambda: len(blocked_by(holder.info.backend_pid)) == 2, message="both requests waiting to claim the hash"
        )
        holder.rollback()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(answer.status_code for answer in answers) == [202, 409]
    assert len({answer.json()["upload_id"] for answer in answers}) == 1  # the 409 names the accepted upload
    assert ingestion_tasks() == [(answers[0].json()["upload_id"],)]
    with service_context():
        assert Upload.objects.count() == 1
        assert PipelineEvent.objects.filter(event_type="upload_received").count() == 1


@pytest.mark.django_db
def test_oversize_body_is_413(client, key, settings):
    settings.UPLOAD_MAX_BYTES = 100
    body = BODY * 5
    response = post_upload(client, key.plain_secret, body, key_id=key.key_id)
    assert response.status_code == 413
    with service_context():
        assert PipelineEvent.objects.get(event_type="upload_rejected").event_data["reason"] == "too_large"


@pytest.mark.django_db
def test_a_chunked_body_without_content_length_is_411(client, key):
    headers = signed_headers(key.plain_secret, BODY, key_id=key.key_id)
    response = client.post(
        UPLOADS, data=BODY, content_type="text/csv", CONTENT_LENGTH="", HTTP_TRANSFER_ENCODING="chunked", **headers
    )
    assert response.status_code == 411
    assert "Content-Length is required" in response.json()["error"]
    with service_context():
        event = PipelineEvent.objects.get(event_type="upload_rejected")
        assert Upload.objects.count() == 0
    assert (event.event_data["reason"], event.event_data["http_status"]) == ("length_required", 411)


@pytest.mark.django_db
def test_legacy_single_secret_without_key_id(client, settings):
    settings.HMAC_SECRET_KEY = "legacy-secret-0123456789abcdef0123456789"
    response = post_upload(client, settings.HMAC_SECRET_KEY, BODY, forms=("v1",))
    assert response.status_code == 202
    upload_id = response.json()["upload_id"]
    assert get_status(client, settings.HMAC_SECRET_KEY, upload_id, forms=("v1",)).status_code == 200
    assert get_status(client, settings.HMAC_SECRET_KEY, upload_id).status_code == 200  # v2 works too
    assert post_upload(client, "wrong" * 8, _body(5), forms=("v1",)).status_code == 401
    # Beside a v2 signature only v2 counts, in the legacy mode too.
    headers = signed_headers(settings.HMAC_SECRET_KEY, _body(6), forms=("v1",))
    headers["HTTP_X_SIGNATURE"] += f" v2={'0' * 64}"
    assert client.post(UPLOADS, data=_body(6), content_type="text/csv", **headers).status_code == 401


@pytest.mark.django_db
def test_a_key_created_with_allow_v1_may_sign_v1(client):
    key = PartnerKeyFactory(allow_v1=True)
    response = post_upload(client, key.plain_secret, BODY, key_id=key.key_id, forms=("v1",))
    assert response.status_code == 202
    upload_id = response.json()["upload_id"]
    assert get_status(client, key.plain_secret, upload_id, key_id=key.key_id, forms=("v1",)).status_code == 200
    assert post_upload(client, "w" * 40, _body(1), key_id=key.key_id, forms=("v1",)).status_code == 401
    bad_v2 = signed_headers(key.plain_secret, _body(2), key_id=key.key_id, forms=("v1",))
    bad_v2["HTTP_X_SIGNATURE"] += f" v2={'0' * 64}"
    assert client.post(UPLOADS, data=_body(2), content_type="text/csv", **bad_v2).status_code == 401


@pytest.mark.django_db
def test_a_captured_status_request_cannot_be_replayed_later(client, key):
    """The earlier client signed each request with both forms. v1 over a status request's empty body is the
    same for every request of the key, forever: with a fresh timestamp it used to read any of its uploads."""
    upload_id = post_upload(client, key.plain_secret, BODY, key_id=key.key_id).json()["upload_id"]
    path = f"{UPLOADS}/{upload_id}"
    month_ago = rfc3339(offset_seconds=-30 * 86400)
    captured = signed_headers(
        key.plain_secret, b"", method="GET", path=path, key_id=key.key_id, timestamp=month_ago, forms=("v2", "v1")
    )
    v2, v1 = captured["HTTP_X_SIGNATURE"].split()
    replays = [
        {**captured, "HTTP_X_SIGNATURE_TIMESTAMP": rfc3339(), "HTTP_X_SIGNATURE": v1},
        {**captured, "HTTP_X_SIGNATURE_TIMESTAMP": rfc3339(), "HTTP_X_SIGNATURE": v2},
        captured,
    ]
    assert [client.get(path, **replay).status_code for replay in replays] == [401, 401, 401]
    with service_context():
        reasons = list(
            PipelineEvent.objects.filter(event_type="upload_rejected")
            .order_by("id")
            .values_list("event_data__reason", flat=True)
        )
    assert reasons == ["v1_not_allowed", "bad_signature", "timestamp_out_of_window"]


@pytest.mark.django_db
def test_a_captured_upload_cannot_be_replayed_after_the_replay_guard_expires(client, key):
    """After REPLAY_GUARD_DAYS the same bytes are new again; a captured upload's v1 signature (over the body
    only) with a fresh timestamp used to create a second upload then."""
    signed_at = rfc3339(offset_seconds=-250)  # inside the window now; a replay needs a fresh time
    captured = signed_headers(key.plain_secret, BODY, key_id=key.key_id, timestamp=signed_at, forms=("v2", "v1"))
    assert client.post(UPLOADS, data=BODY, content_type="text/csv", **captured).status_code == 202
    with service_context():
        IngestReplayGuard.objects.update(created_at=timezone.now() - dt.timedelta(days=8))
    v2, v1 = captured["HTTP_X_SIGNATURE"].split()
    for signature in (v1, v2):
        replay = {**captured, "HTTP_X_SIGNATURE_TIMESTAMP": rfc3339(), "HTTP_X_SIGNATURE": signature}
        assert client.post(UPLOADS, data=BODY, content_type="text/csv", **replay).status_code == 401
    with service_context():
        assert Upload.objects.count() == 1


@pytest.mark.django_db
def test_secrets_and_expected_signatures_never_leak(client, key, caplog):
    caplog.set_level(logging.DEBUG)
    bad = signed_headers("y" * 40, BODY, key_id=key.key_id)
    expected_v2 = signing.sign_v2(
        key.plain_secret,
        method="POST",
        path=UPLOADS,
        timestamp=bad["HTTP_X_SIGNATURE_TIMESTAMP"],
        content_sha256=bad["HTTP_X_CONTENT_SHA256"],
    )
    expected_v1 = signing.sign_v1(key.plain_secret, BODY)
    responses = [
        client.post(UPLOADS, data=BODY, content_type="text/csv", **bad),
        client.post(
            UPLOADS,
            data=BODY,
            content_type="text/csv",
            **signed_headers("y" * 40, BODY, key_id=key.key_id, forms=("v1",)),
        ),
        post_upload(client, key.plain_secret, BODY, key_id=key.key_id),
    ]
    with service_context():
        events = " ".join(str(event.event_data) + str(event.error_message) for event in PipelineEvent.objects.all())
    text = " ".join(response.content.decode() for response in responses) + caplog.text + events
    for secret in (key.plain_secret, expected_v2, expected_v1, bad["HTTP_X_SIGNATURE"][3:]):
        assert secret not in text
    assert [response.status_code for response in responses] == [401, 401, 202]
    assert responses[0].json() == responses[1].json() == {"error": "signature verification failed"}


@pytest.mark.django_db
def test_status_is_signed_and_scoped_to_the_partner(client, key):
    upload_id = post_upload(client, key.plain_secret, BODY, key_id=key.key_id).json()["upload_id"]
    own = get_status(client, key.plain_secret, upload_id, key_id=key.key_id)
    assert own.status_code == 200
    assert {
        "status",
        "rows_total",
        "leads_created",
        "leads_merged",
        "duplicates_in_file",
        "rows_rejected",
        "dlq_ids_sample",
        "progress",
        "started_at",
        "finished_at",
    } <= set(own.json())
    sibling = PartnerKeyFactory(partner=key.partner)
    assert get_status(client, sibling.plain_secret, upload_id, key_id=sibling.key_id).status_code == 200
    stranger = PartnerKeyFactory()
    assert get_status(client, stranger.plain_secret, upload_id, key_id=stranger.key_id).status_code == 404
    assert client.get(f"{UPLOADS}/{upload_id}").status_code == 400
    forged = signed_headers("z" * 40, b"", method="GET", path=f"{UPLOADS}/{upload_id}", key_id=key.key_id)
    assert client.get(f"{UPLOADS}/{upload_id}", **forged).status_code == 401


@pytest.mark.django_db
def test_broker_header_names_only_brokers_the_key_may_route_to(client):
    allowed, default, other = BrokerFactory(), BrokerFactory(), BrokerFactory()
    retired = BrokerFactory(active=False)
    key = PartnerKeyFactory(default_broker=default)
    with service_context():
        key.allowed_brokers.add(allowed, retired)

    def send(n, broker=None):
        extra = {"x_broker_id": str(broker)} if broker else {}
        return post_upload(client, key.plain_secret, _body(n), key_id=key.key_id, **extra)

    chosen, explicit_default, fallback = send(7, allowed.pk), send(8, default.pk), send(9)
    refused, unknown = send(10, other.pk), send(11, "00000000-0000-0000-0000-000000000000")
    malformed, inactive = send(12, "not-a-uuid"), send(13, retired.pk)
    assert [r.status_code for r in (chosen, explicit_default, fallback)] == [202, 202, 202]
    assert [r.status_code for r in (refused, unknown, malformed, inactive)] == [403, 403, 400, 400]
    assert refused.json() == unknown.json()  # an unknown broker and another's broker look the same
    assert "may not send leads to" in refused.json()["error"]
    with service_context():
        routed = {
            upload_id: Upload.objects.get(pk=upload_id).broker_id
            for upload_id in (r.json()["upload_id"] for r in (chosen, explicit_default, fallback))
        }
        rejected = list(
            PipelineEvent.objects.filter(event_type="upload_rejected")
            .order_by("id")
            .values_list("event_data__reason", "event_data__http_status", "event_data__key_id")
        )
        assert Upload.objects.count() == 3
    assert list(routed.values()) == [allowed.pk, default.pk, default.pk]
    assert rejected == [
        ("broker_not_allowed", 403, key.key_id),
        ("broker_not_allowed", 403, key.key_id),
        ("malformed_header", 400, key.key_id),
        ("unknown_broker", 400, key.key_id),
    ]


@pytest.mark.django_db
def test_the_replay_guard_is_per_partner(client, settings, django_capture_on_commit_callbacks):
    first_key, other_key = PartnerKeyFactory(), PartnerKeyFactory()
    sibling = PartnerKeyFactory(partner=first_key.partner)
    first = post_upload(client, first_key.plain_secret, BODY, key_id=first_key.key_id)
    other = post_upload(client, other_key.plain_secret, BODY, key_id=other_key.key_id)
    assert (first.status_code, other.status_code) == (202, 202)
    assert first.json()["upload_id"] not in other.content.decode()  # another partner's upload is never named
    again = post_upload(client, sibling.plain_secret, BODY, key_id=sibling.key_id)  # the same partner
    other_again = post_upload(client, other_key.plain_secret, BODY, key_id=other_key.key_id, x_filename="again")
    assert (again.status_code, again.json()["upload_id"]) == (409, first.json()["upload_id"])
    assert (other_again.status_code, other_again.json()["upload_id"]) == (409, other.json()["upload_id"])

    settings.HMAC_SECRET_KEY = "legacy-secret-0123456789abcdef0123456789"  # no partner: one sender too
    legacy = post_upload(client, settings.HMAC_SECRET_KEY, BODY, forms=("v1",))
    legacy_again = post_upload(client, settings.HMAC_SECRET_KEY, BODY)
    assert legacy.status_code == 202
    assert (legacy_again.status_code, legacy_again.json()["upload_id"]) == (409, legacy.json()["upload_id"])
    with service_context():
        assert Upload.objects.count() == 3
        guards = IngestReplayGuard.objects.order_by("id")
        assert [(g.partner_id, str(g.upload_id)) for g in guards] == [
            (first_key.partner_id, first.json()["upload_id"]),
            (other_key.partner_id, other.json()["upload_id"]),
            (None, legacy.json()["upload_id"]),
        ]


@pytest.mark.django_db
def test_trailing_slash_and_wrong_method(client, key):
    body = _body(11)
    headers = signed_headers(key.plain_secret, body, key_id=key.key_id, path=UPLOADS + "/")
    assert client.post(UPLOADS + "/", data=body, content_type="text/csv", **headers).status_code == 202
    assert client.get(UPLOADS).status_code == 405


def test_parse_timestamp_forms():
    for text in ("2026-11-27T22:50:00Z", "2026-11-27T22:50:00.123456789+00:00", "2026-11-27T14:50:00-08:00"):
        assert signing.parse_timestamp(text).utcoffset() is not None
    with pytest.raises(signing.SignatureHeaderError):
        signing.parse_timestamp("2026-11-27T22:50:00")  # no zone: ambiguous
