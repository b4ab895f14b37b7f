"""The signed-upload protocol (docs/api.md) as a table: each case is one request and its expected status."""

from __future__ import annotations

import hashlib
import logging
import threading

import pytest
from django.db import connection
from django.test import Client
from django_q.models import OrmQ

from equity_connect.db import service_context
from equity_connect.models import PipelineEvent
from pipeline.models import Upload
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


CASES = [
    # (case, request builder, expected status, rejection reason class or None)
    ("v2 signature", _signed(), 202, None),
    ("v1 signature (the seed's form)", _signed(forms=("v1",)), 202, None),
    ("both forms", _signed(forms=("v1", "v2")), 202, None),
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
def test_oversize_body_without_content_length_is_413(key, settings):
    from django.test import RequestFactory

    from pipeline.intake.views import uploads

    settings.UPLOAD_MAX_BYTES = 100
    body = BODY * 5
    request = RequestFactory().post(
        UPLOADS, data=body, content_type="text/csv", **signed_headers(key.plain_secret, body, key_id=key.key_id)
    )
    request.META["CONTENT_LENGTH"] = ""  # a chunked request: the limit is enforced while streaming
    assert uploads(request).status_code == 413


@pytest.mark.django_db
def test_legacy_single_secret_without_key_id(client, settings):
    settings.HMAC_SECRET_KEY = "legacy-secret-0123456789abcdef0123456789"
    response = post_upload(client, settings.HMAC_SECRET_KEY, BODY, forms=("v1",))
    assert response.status_code == 202
    upload_id = response.json()["upload_id"]
    assert get_status(client, settings.HMAC_SECRET_KEY, upload_id).status_code == 200
    assert post_upload(client, "wrong" * 8, _body(5), forms=("v1",)).status_code == 401


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
def test_broker_header_and_default_broker(client):
    broker, default = BrokerFactory(), BrokerFactory()
    key = PartnerKeyFactory(default_broker=default)
    chosen = post_upload(client, key.plain_secret, _body(7), key_id=key.key_id, x_broker_id=str(broker.pk))
    fallback = post_upload(client, key.plain_secret, _body(8), key_id=key.key_id)
    unknown = post_upload(
        client, key.plain_secret, _body(9), key_id=key.key_id, x_broker_id="00000000-0000-0000-0000-000000000000"
    )
    assert unknown.status_code == 400
    with service_context():
        assert Upload.objects.get(pk=chosen.json()["upload_id"]).broker_id == broker.pk
        assert Upload.objects.get(pk=fallback.json()["upload_id"]).broker_id == default.pk


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
