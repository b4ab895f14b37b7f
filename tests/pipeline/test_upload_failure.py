"""A failed upload, end to end through the signed upload API and the real task: it releases its replay
guard (the partner may send the same file again, and gets a new upload), it is on the upload's timeline,
and the alert says which upload failed and why — never what the file holds."""

from __future__ import annotations

import pytest
from django.core import mail

from equity_connect.db import service_context
from equity_connect.models import PipelineEvent
from pipeline.models import IngestReplayGuard, PipelineDLQ, Upload
from pipeline.monitoring.alerts import alerts_evaluate
from pipeline.tasks import upload_process
from tests.factories import PartnerKeyFactory
from tests.fakes.receiver import WebhookReceiver
from tests.security.signing_helpers import post_upload, rfc3339

pytestmark = pytest.mark.django_db

# No header line: its first row is read as one, so no key column is recognised and the file cannot be read.
# The upload's own error message quotes that line (the partner needs it); the alert must not.
HEADERLESS = b"Jane Roe,555-0100,12 Quiet Lane,San Diego,CA\nJohn Roe,555-0101,14 Quiet Lane,San Diego,CA\n"
PRIVATE = (b"Jane", b"Roe", b"555-0100", b"Quiet Lane")


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    settings.HMAC_SECRET_KEY = ""


@pytest.fixture
def receiver(settings):
    with WebhookReceiver() as webhook:
        settings.ALERT_WEBHOOK_URL = webhook.url + "/alerts"
        settings.ALERT_EMAILS = ["ops@example.com"]
        yield webhook


def test_after_a_failed_upload_the_same_signed_file_is_accepted_again_and_the_alert_names_it(
    client, receiver, running_system
):
    key = PartnerKeyFactory()
    first = post_upload(client, key.plain_secret, HEADERLESS, key_id=key.key_id)
    assert first.status_code == 202
    upload_id = first.json()["upload_id"]
    early = post_upload(client, key.plain_secret, HEADERLESS, key_id=key.key_id, timestamp=rfc3339(offset_seconds=-2))
    assert early.status_code == 409  # the guard holds while the upload waits for its task

    assert upload_process(upload_id) == "failed"  # the django-q2 task, as the cluster runs it

    with service_context():
        failed = Upload.objects.get(pk=upload_id)
        assert not IngestReplayGuard.objects.filter(content_sha256=failed.content_sha256).exists()
        assert PipelineDLQ.objects.filter(upload=failed, source="upload").exists()
        [event] = PipelineEvent.objects.filter(upload_id=upload_id, event_type="upload_failed")
    assert failed.error_message.startswith("no recognised key columns")
    assert event.event_data == {"reason": "unreadable_file", "error_class": None, "replay_guard_released": True}

    again = post_upload(client, key.plain_secret, HEADERLESS, key_id=key.key_id, timestamp=rfc3339(offset_seconds=-5))
    assert again.status_code == 202
    assert again.json()["upload_id"] != upload_id
    with service_context():
        assert Upload.objects.filter(content_sha256=failed.content_sha256).count() == 2
        guard = IngestReplayGuard.objects.get(content_sha256=failed.content_sha256)
    assert str(guard.upload_id) == again.json()["upload_id"]

    assert alerts_evaluate()["fired"] == ["upload_failed"]
    [request] = receiver.requests
    text = request["body"]["text"]
    assert f"{upload_id} (the file cannot be read)" in text
    [email] = mail.outbox
    for sent in (text, request["body"]["message"], email.subject, email.body):
        assert not [word for word in PRIVATE if word.decode() in sent], sent
