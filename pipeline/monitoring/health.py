"""/healthz: what a load balancer asks (database reachable, no migration pending, scheduler alive).

The django-q2 scheduler's liveness is the `JobHeartbeat` row named `SCHEDULER_HEARTBEAT` ("scheduler");
every scheduled task and every cluster start write it (pipeline/jobs.py), at least every
`HEALTH_SCHEDULER_MAX_AGE_SECONDS`. The endpoint is anonymous, so it opens `service_context()` itself.

It also reports (without failing the check: a load balancer must not take the web away for them) the uploads
older than UPLOAD_STUCK_MINUTES that are not done, and it is the alerts' second evaluator: when the alerts job
has not run for ALERTS_FALLBACK_AFTER_SECONDS (the scheduler is dead), a request here starts one evaluation of
every alert rule in a background thread (at most one per process per minute; across processes the job's lock
lets one through), so the dead-man's switches still notify. The response never waits for it.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from equity_connect.db import service_context
from pipeline.jobs import ALERTS, SCHEDULER_HEARTBEAT
from pipeline.models import JobHeartbeat
from security.enforcement import signature_enforcement_disabled_until

from .deadman import stuck_uploads

logger = logging.getLogger(__name__)

_migrations_ok_until = 0.0
_fallback_running = threading.Lock()
_fallback_started_at = -3600.0
FALLBACK_MIN_INTERVAL_SECONDS = 60


def migrations_applied(using: str = DEFAULT_DB_ALIAS) -> bool:
    """True when no migration is waiting. A positive answer is cached for a minute (it reads every file)."""
    global _migrations_ok_until
    if time.monotonic() < _migrations_ok_until:
        return True
    connection = connections[using]
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if plan:
        return False
    _migrations_ok_until = time.monotonic() + 60
    return True


def _heartbeat_age(name: str, now: dt.datetime) -> float | None:
    with service_context():
        seen = JobHeartbeat.objects.filter(name=name).values_list("last_seen_at", flat=True).first()
    return None if seen is None else max(0.0, (now - seen).total_seconds())


def health_check(
    *, now: dt.datetime | None = None, using: str = DEFAULT_DB_ALIAS, for_operator: bool = False
) -> tuple[bool, dict]:
    """(healthy, report). Healthy = database reachable, no migration pending, scheduler heartbeat fresh.

    `for_operator` (`manage.py healthcheck`, a shell on our machines) adds whether signature enforcement is
    on. /healthz is anonymous and leaves it out: "enforcement is off until …" tells an attacker when
    unsigned uploads go through (ops see it on /metrics, behind its token, and in the logs)."""
    now = now or timezone.now()
    max_age = settings.HEALTH_SCHEDULER_MAX_AGE_SECONDS
    report: dict = {
        "status": "ok",
        "time": now.isoformat(),
        "checks": {
            "database": {"ok": False},
            "migrations": {"ok": False},
            "scheduler": {"ok": False, "heartbeat": SCHEDULER_HEARTBEAT, "max_age_seconds": max_age},
        },
    }
    checks = report["checks"]
    connection = connections[using]
    try:
        started = time.monotonic()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        checks["database"] = {"ok": True, "latency_ms": round((time.monotonic() - started) * 1000, 1)}
    except Exception as exc:  # any driver error means "unreachable" to a load balancer
        logger.warning("healthz: database unreachable", extra={"error": exc.__class__.__name__})
        checks["database"] = {"ok": False, "error": exc.__class__.__name__}
        checks["migrations"]["error"] = "database unreachable"
        checks["scheduler"]["error"] = "database unreachable"
        report["status"] = "unhealthy"
        return False, report
    try:
        checks["migrations"] = {"ok": migrations_applied(using)}
    except Exception as exc:
        checks["migrations"] = {"ok": False, "error": exc.__class__.__name__}
    age = _heartbeat_age(SCHEDULER_HEARTBEAT, now)
    checks["scheduler"].update(
        {
            "ok": age is not None and age <= max_age,
            "age_seconds": None if age is None else round(age, 1),
        }
    )
    with service_context():
        stuck = stuck_uploads(now)
    report["uploads"] = {
        "ok": stuck["count"] == 0,
        "stuck": stuck["count"],
        "older_than_minutes": stuck["older_than_minutes"],
    }
    report["alerts"] = alerts_fallback(now)
    if for_operator:
        until = signature_enforcement_disabled_until(now=now)
        report["signature_enforcement"] = "enforced" if until is None else f"disabled until {until.isoformat()}"
    healthy = all(check["ok"] for check in checks.values())
    report["status"] = "ok" if healthy else "unhealthy"
    return healthy, report


def alerts_fallback(now: dt.datetime) -> dict:
    """Start a background evaluation of the alert rules when the alerts job is overdue; say what happened."""
    age = _heartbeat_age(ALERTS, now)
    overdue = age is None or age > settings.ALERTS_FALLBACK_AFTER_SECONDS
    state = {"job_age_seconds": None if age is None else round(age, 1), "overdue": overdue}
    if not overdue or not settings.ALERTS_FROM_HEALTHZ:
        return state
    global _fallback_started_at
    if time.monotonic() - _fallback_started_at < FALLBACK_MIN_INTERVAL_SECONDS:
        return state
    if not _fallback_running.acquire(blocking=False):
        return state
    _fallback_started_at = time.monotonic()
    threading.Thread(target=_alerts_evaluate_in_background, name="alerts-fallback", daemon=True).start()
    state["evaluating"] = True
    return state


def _alerts_evaluate_in_background() -> None:
    from .alerts import alerts_evaluate_run  # the rules import most of the pipeline: only when needed

    try:
        result = alerts_evaluate_run()
        logger.warning("alerts job overdue: /healthz evaluated the alert rules: %s", result.message)
    except Exception:
        logger.exception("alerts job overdue: /healthz could not evaluate the alert rules")
    finally:
        connections.close_all()  # this thread's own connection
        _fallback_running.release()
