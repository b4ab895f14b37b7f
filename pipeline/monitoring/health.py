"""/healthz: what a load balancer asks (database reachable, no migration pending, scheduler alive).

The django-q2 scheduler's liveness is the `JobHeartbeat` row named `SCHEDULER_HEARTBEAT` ("scheduler");
every scheduled task and every cluster start write it (pipeline/jobs.py), at least every
`HEALTH_SCHEDULER_MAX_AGE_SECONDS`. The endpoint is anonymous, so it opens `service_context()` itself.
"""

from __future__ import annotations

import datetime as dt
import logging
import time

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from equity_connect.db import service_context
from pipeline.jobs import SCHEDULER_HEARTBEAT
from pipeline.models import JobHeartbeat
from security.enforcement import signature_enforcement_disabled_until

logger = logging.getLogger(__name__)

_migrations_ok_until = 0.0


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
    if for_operator:
        until = signature_enforcement_disabled_until(now=now)
        report["signature_enforcement"] = "enforced" if until is None else f"disabled until {until.isoformat()}"
    healthy = all(check["ok"] for check in checks.values())
    report["status"] = "ok" if healthy else "unhealthy"
    return healthy, report
