"""The job runner (advisory lock, events, heartbeats), the MV refresh and cleanup jobs, and the DLQ."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from equity_connect.db import service_context
from equity_connect.models import PipelineEvent, Throttle
from equity_connect.throttle import Limit, throttle_hit, throttle_hits
from leads.models import Lead
from pipeline.campaigns.contactable import contactable_leads_refresh_run
from pipeline.campaigns.push_retry import dlq_retry_now_run, dlq_retry_run
from pipeline.jobs import JobReport, job_run
from pipeline.models import IngestReplayGuard, JobHeartbeat, PipelineDLQ, WebhookDelivery
from pipeline.tasks import JobFailed, cleanup_task, refresh_contactable_leads_task
from tests.factories import (
    ConsentTokenFactory,
    IngestReplayGuardFactory,
    PipelineDLQFactory,
    WebhookDeliveryFactory,
)
from tests.pg import connect as second_connection
from tests.pipeline.jobs_support import mv_refresh, queued_leads


def events(event_type: str) -> list[PipelineEvent]:
    with service_context():
        return list(PipelineEvent.objects.filter(event_type=event_type).order_by("id"))


def lock_is_free(name: str) -> bool:
    """Ask from another connection whether job `name`'s advisory lock can be taken now."""
    with second_connection() as other:
        return other.execute("SELECT pg_try_advisory_lock(hashtext(%s))", [f"job:{name}"]).fetchone()[0]


@pytest.mark.django_db
def test_a_job_records_its_event_duration_and_heartbeat():
    result = job_run("probe", lambda: JobReport(message="did it", data={"n": 3}))

    assert result.status == "success" and result.message == "did it"
    event = events("job_run")[-1]
    run_id = event.event_data.pop("job_run_id")
    assert event.status == "success" and event.event_data == {"job": "probe", "n": 3} and len(run_id) == 32
    assert event.duration_ms is not None and event.duration_ms >= 0
    with service_context():
        heartbeat = JobHeartbeat.objects.get(name="probe")
    assert heartbeat.last_status == "success" and heartbeat.last_duration_ms == event.duration_ms


@pytest.mark.django_db
def test_a_job_whose_lock_is_taken_records_a_skip_and_does_nothing():
    ran = []
    with second_connection(autocommit=False) as other:
        other.execute("SELECT pg_advisory_xact_lock(hashtext('job:probe'))")
        result = job_run("probe", lambda: ran.append(1) or JobReport(message="ran"))
        other.rollback()

    assert result.status == "skipped" and ran == []
    skip = events("job_skipped")[-1]
    assert skip.event_data.pop("job_run_id")
    assert skip.event_data == {"job": "probe", "reason": "lock_held"}
    assert events("job_run") == []


@pytest.mark.django_db
def test_a_failing_job_rolls_back_its_work_and_records_the_failure():
    lead = queued_leads(1)[0]

    def work():
        Lead.objects.filter(pk=lead.pk).update(campaign_status="converted")
        raise RuntimeError("boom")

    result = job_run("probe", work)

    assert result.status == "failure" and "RuntimeError: boom" in result.message
    with service_context():
        assert Lead.objects.get(pk=lead.pk).campaign_status == "queued"
        assert JobHeartbeat.objects.get(name="probe").last_status == "failure"
    event = events("job_run")[-1]
    assert event.status == "failure" and event.error_message == "RuntimeError: boom"
    assert event.duration_ms is not None


@pytest.mark.django_db(transaction=True)
def test_a_failing_mv_refresh_records_a_failure_releases_its_lock_and_the_next_run_succeeds(settings):
    settings.MV_REFRESH_LOCK_TIMEOUT_SECONDS = 0.2
    queued_leads(3)
    with second_connection(admin=True, autocommit=False) as blocker:
        # Something holds the view (here a plain REFRESH left open; in life a long DDL or a stuck session):
        # the job's refresh cannot get its lock in time.
        blocker.execute("REFRESH MATERIALIZED VIEW mv_contactable_leads")
        failed = contactable_leads_refresh_run()
        assert lock_is_free("refresh_contactable_leads")  # released with the job's transaction
        blocker.rollback()

    assert failed.status == "failure" and "lock timeout" in failed.message
    # The task fails too, so django-q2 shows it as failed.
    with second_connection(admin=True, autocommit=False) as blocker, pytest.raises(JobFailed):
        blocker.execute("REFRESH MATERIALIZED VIEW mv_contactable_leads")
        try:
            refresh_contactable_leads_task()
        finally:
            blocker.rollback()

    succeeded = contactable_leads_refresh_run()

    assert succeeded.status == "success" and "3 contactable leads, 3 queued" in succeeded.message
    refreshed = events("mv_refreshed")
    assert [e.status for e in refreshed] == ["failure", "failure", "success"]
    assert "lock timeout" in refreshed[0].error_message
    assert refreshed[-1].event_data["rows"] == 3 and refreshed[-1].duration_ms is not None
    with service_context(), connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM mv_contactable_leads")
        assert cursor.fetchone()[0] == 3
        Lead.objects.all().delete()
    mv_refresh()  # leave the view empty for the next tests


@pytest.mark.django_db
def test_the_cleanup_job_removes_only_old_rows_and_beats_the_scheduler_heartbeat():
    old, fresh = IngestReplayGuardFactory(), IngestReplayGuardFactory()
    used_long_ago = ConsentTokenFactory(used_at=timezone.now() - dt.timedelta(days=31))
    unused = ConsentTokenFactory()
    old_delivery, new_delivery = WebhookDeliveryFactory(), WebhookDeliveryFactory()
    limit = Limit("test", 3, dt.timedelta(minutes=15))
    throttle_hit(limit, "203.0.113.1")
    throttle_hit(limit, "203.0.113.2")
    with service_context():
        IngestReplayGuard.objects.filter(pk=old.pk).update(created_at=timezone.now() - dt.timedelta(days=8))
        WebhookDelivery.objects.filter(pk=old_delivery.pk).update(received_at=timezone.now() - dt.timedelta(days=91))
        Throttle.objects.filter(pk=Throttle.objects.order_by("pk")[0].pk).update(
            window_started_at=timezone.now() - dt.timedelta(days=2)
        )

    message = cleanup_task()

    assert message == ("removed 1 replay guards, 1 consent tokens, 0 upload files, 1 rate-limit counters")
    assert throttle_hits(limit, "203.0.113.1") == 0 and throttle_hits(limit, "203.0.113.2") == 1
    with service_context():
        assert list(IngestReplayGuard.objects.values_list("pk", flat=True)) == [fresh.pk]
        # Webhook deliveries are the retention job's (tests/pipeline/test_retention.py).
        assert set(WebhookDelivery.objects.values_list("pk", flat=True)) == {old_delivery.pk, new_delivery.pk}
        from leads.models import ConsentToken

        assert set(ConsentToken.objects.values_list("pk", flat=True)) == {unused.pk}
        assert used_long_ago.pk not in set(ConsentToken.objects.values_list("pk", flat=True))
        assert set(JobHeartbeat.objects.values_list("name", flat=True)) >= {"scheduler", "cleanup"}
    assert events("job_run")[-1].event_data["replay_guards"] == 1


@pytest.mark.django_db
def test_the_retry_job_retries_only_instantly_pushes():
    past = timezone.now() - dt.timedelta(minutes=1)
    webhook = PipelineDLQFactory(source="webhook", retry_after=past, status="retrying")
    validation = PipelineDLQFactory(source="upload_row")  # a person fixes these; never retried automatically

    result = dlq_retry_run()
    by_hand = dlq_retry_now_run(row_ids=[webhook.pk, validation.pk])

    assert result.data == {"rows": 0}
    assert f"#{webhook.pk}: no_handler" in by_hand.message and f"#{validation.pk}: no_handler" in by_hand.message
    with service_context():
        rows = {row.pk: row for row in PipelineDLQ.objects.all()}
    assert rows[webhook.pk].attempts == 0 and rows[webhook.pk].status == "retrying"
    assert rows[validation.pk].attempts == 0 and rows[validation.pk].status == "open"


@pytest.mark.django_db
def test_the_dlq_command_lists_and_discards_with_a_note(capsys):
    row = PipelineDLQFactory(reason="no dedupe key")

    call_command("dlq", "list")
    with pytest.raises(CommandError):
        call_command("dlq", "discard", str(row.pk))  # --note is required
    call_command("dlq", "discard", str(row.pk), "--note", "vendor test file")

    out = capsys.readouterr().out
    assert f"#{row.pk} upload_row open" in out and "no dedupe key" in out
    assert f"#{row.pk}: discarded" in out
    with service_context():
        row.refresh_from_db()
    assert row.status == "discarded" and row.resolution_note == "vendor test file"
    assert events("dlq_discarded")[-1].event_data["dlq_id"] == row.pk


@pytest.mark.django_db
def test_the_refresh_and_cleanup_commands_say_what_they_did(capsys):
    queued_leads(2)

    call_command("refresh_contactable_leads")
    call_command("cleanup")

    out = capsys.readouterr().out
    assert "refreshed mv_contactable_leads in" in out and "2 contactable leads, 2 queued" in out
    assert "removed 0 replay guards" in out


@pytest.mark.django_db(transaction=True)
def test_the_cleanup_job_deletes_the_files_of_long_finished_uploads(settings, tmp_path):
    from django.core.files.base import ContentFile

    from pipeline.models import Upload
    from tests.factories import UploadFactory

    settings.MEDIA_ROOT = tmp_path
    old, recent, running = (
        UploadFactory(status="done"),
        UploadFactory(status="done"),
        UploadFactory(status="processing"),
    )
    with service_context():
        for upload in (old, recent, running):
            upload.file.save(f"{upload.pk}.csv", ContentFile(b"mak\nM1\n"))
        Upload.objects.filter(pk=old.pk).update(finished_at=timezone.now() - dt.timedelta(days=31))
        Upload.objects.filter(pk=recent.pk).update(finished_at=timezone.now() - dt.timedelta(days=1))
    paths = {upload.pk: tmp_path / upload.file.name for upload in (old, recent, running)}

    assert cleanup_task().endswith("1 upload files, 0 rate-limit counters")

    assert not paths[old.pk].exists()
    assert paths[recent.pk].exists() and paths[running.pk].exists()
    with service_context():
        assert Upload.objects.get(pk=old.pk).file.name == ""
        assert Upload.objects.get(pk=recent.pk).file.name != ""
