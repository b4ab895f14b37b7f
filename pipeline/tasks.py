"""django-q2 task functions: thin. Each takes ids (or nothing), runs one service or job, and raises when a
job failed so that django-q2 shows the task as failed too. The schedules (pipeline/schedules.py) and the
upload API (pipeline/intake/services.py) name these functions by their dotted path.
"""

from __future__ import annotations

from django.conf import settings

from equity_connect.db import service_context
from equity_connect.events import record_event
from leads.contact_indexes import contact_indexes_fill
from pipeline.campaigns.blocklist import suppressions_instantly_sync_run
from pipeline.campaigns.contactable import contactable_leads_refresh_run
from pipeline.campaigns.feeder import campaign_feeder_run
from pipeline.campaigns.learning import score_model_training_run
from pipeline.campaigns.push_retry import dlq_retry_run
from pipeline.campaigns.pushes import instantly_sequences_stop as instantly_sequences_stop_service
from pipeline.cleanup import cleanup_run
from pipeline.ingest.services import upload_ingest
from pipeline.ingest.sweeper import uploads_sweep
from pipeline.jobs import CONTACTS_ENCRYPT, UPLOAD_SWEEP, JobResult, heartbeat_touch, job_lock_try, scheduler_heartbeat
from pipeline.lead_search import lead_search_fold_run
from pipeline.monitoring.alerts import alerts_evaluate_run
from pipeline.notifications import notifications_mail_run
from pipeline.partitions import event_partitions_run
from pipeline.retention import retention_run
from pipeline.sms.feed import sms_feeder_run


class JobFailed(Exception):
    pass


def _done(result: JobResult) -> str:
    if result.status == "failure":
        raise JobFailed(result.message)
    return result.message


def upload_process(upload_id: str) -> str:
    """Process one upload; safe to run twice (a done upload returns at once, a busy one is skipped)."""
    upload = upload_ingest(upload_id=upload_id)
    return "busy" if upload is None else upload.status


def uploads_sweep_task() -> str:
    """Every minute: queue again the uploads whose task was lost (no event unless one was)."""
    scheduler_heartbeat()
    requeued = uploads_sweep(idle_seconds=settings.UPLOAD_SWEEP_IDLE_SECONDS)
    with service_context():
        heartbeat_touch(UPLOAD_SWEEP, status="success")
    return f"queued again: {', '.join(requeued)}" if requeued else "nothing to sweep"


def contacts_encrypt_task() -> str:
    """Every minute: encrypt the e-mail and phone of the leads the seed's `upsert_lead()` (the legacy path; the
    database holds no key) wrote in plaintext, and fill their blind indexes (leads/contact_indexes.py). Records
    `contacts_encrypted` with the count when there were any."""
    scheduler_heartbeat()
    with service_context():
        if not job_lock_try(CONTACTS_ENCRYPT):
            return "another sweep is running"
        changed = contact_indexes_fill()
        if changed:
            record_event("contacts_encrypted", data={"job": CONTACTS_ENCRYPT, "leads": changed})
        heartbeat_touch(CONTACTS_ENCRYPT, status="success")
    return f"encrypted the contacts of {changed} leads" if changed else "nothing to encrypt"


def instantly_sequences_stop(sequences: list[list[str]], reason: str = "new owner") -> str:
    """Stop the Instantly sequences of these leads: the old owners' when a new owner arrived (enqueued by the
    ingestion and the merge), or a lead's own once an appointment is booked (leads/services.py)."""
    with service_context():
        stopped = instantly_sequences_stop_service(
            sequences=[(lead_id, instantly_id) for lead_id, instantly_id in sequences], reason=reason[:200]
        )
    return "stopped" if stopped else "failed: a DLQ review row asks a person"


def refresh_contactable_leads_task() -> str:
    scheduler_heartbeat()
    return _done(contactable_leads_refresh_run())


def campaign_feeder_task(intended_date: str | None = None) -> str:
    """`intended_date`: django-q2's intended run instant (Schedule.intended_date_kwarg), the day's key."""
    scheduler_heartbeat()
    return _done(campaign_feeder_run(intended_date=intended_date))


def score_model_train_task() -> str:
    scheduler_heartbeat()
    return _done(score_model_training_run())


def cleanup_task() -> str:
    scheduler_heartbeat()
    return _done(cleanup_run())


def retention_task() -> str:
    scheduler_heartbeat()
    return _done(retention_run())


def event_partitions_task() -> str:
    scheduler_heartbeat()
    return _done(event_partitions_run())


def lead_search_fold_task() -> str:
    scheduler_heartbeat()
    return _done(lead_search_fold_run())


def dlq_retry_task() -> str:
    scheduler_heartbeat()
    return _done(dlq_retry_run())


def alerts_evaluate_task() -> str:
    scheduler_heartbeat()
    return _done(alerts_evaluate_run())


def suppressions_instantly_sync_task() -> str:
    """Every minute: the Instantly side (block list, stopped sequences) of new suppression entries."""
    result = suppressions_instantly_sync_run()
    return "nothing to sync" if result is None else _done(result)


def broker_notifications_mail_task() -> str:
    """Every 5 minutes: each broker's new notifications in one e-mail (at most one every 15 minutes)."""
    scheduler_heartbeat()
    return _done(notifications_mail_run())


def sms_feeder_task() -> str:
    scheduler_heartbeat()
    result = sms_feeder_run()
    return "no lead waits for a text" if result is None else _done(result)
