"""django-q2 task functions for the scheduled jobs (pipeline/schedules.py). Thin: each writes the
scheduler heartbeat, runs one job (which opens the service context and takes its lock) and raises when
the job failed, so django-q2 shows the task as failed too. Ingestion's tasks live in tasks_ingest.py.
"""

from __future__ import annotations

from pipeline.jobs import ALERTS, JobReport, JobResult, job_run, scheduler_heartbeat


class JobFailed(Exception):
    pass


def _done(result: JobResult) -> str:
    if result.status == "failure":
        raise JobFailed(result.message)
    return result.message


def refresh_contactable_leads_task() -> str:
    from pipeline.jobs import contactable_leads_refresh_run

    scheduler_heartbeat()
    return _done(contactable_leads_refresh_run())


def campaign_feeder_task(intended_date: str | None = None) -> str:
    """`intended_date`: django-q2's intended run instant (Schedule.intended_date_kwarg), the day's key."""
    from pipeline.feeder import campaign_feeder_run

    scheduler_heartbeat()
    return _done(campaign_feeder_run(intended_date=intended_date))


def cleanup_task() -> str:
    from pipeline.jobs import cleanup_run

    scheduler_heartbeat()
    return _done(cleanup_run())


def dlq_retry_task() -> str:
    from pipeline.dlq_retry import dlq_retry_run

    scheduler_heartbeat()
    return _done(dlq_retry_run())


def alerts_evaluate_task() -> str:
    scheduler_heartbeat()

    def work() -> JobReport:
        from pipeline.alerts import alerts_evaluate  # issue 6's rules; imported when the job runs

        summary = alerts_evaluate() or {}
        data = {key: summary.get(key) for key in ("fired", "resolved", "firing") if key in summary}
        return JobReport(message=f"alerts evaluated: {data}", data=data)

    return _done(job_run(ALERTS, work))
