"""The brokers' notification e-mails as a scheduled job (every 5 minutes): `leads.notifications.notifications_mail`
under `job_run` (its lock, event and heartbeat). The batching itself (one e-mail per broker, at most one every
15 minutes) is the leads service's."""

from __future__ import annotations

from leads.notifications import notifications_mail
from pipeline.jobs import NOTIFICATIONS_MAIL, JobReport, JobResult, job_run


def notifications_mail_job() -> JobReport:
    counts = notifications_mail()
    return JobReport(
        message=f"notification e-mails: {counts['mails']} sent ({counts['notifications']} notifications),"
        f" {counts['waiting']} waiting for their broker's 15 minutes, {counts['failed']} failed",
        data=counts,
        status="failure" if counts["failed"] else "success",
        error_message=f"{counts['failed']} notification e-mail(s) failed" if counts["failed"] else None,
    )


def notifications_mail_run() -> JobResult:
    return job_run(NOTIFICATIONS_MAIL, notifications_mail_job)
