"""Riding out a transient database fault: which errors are worth waiting for, and how long to wait.

A failover, a restart, a dropped connection, a deadlock or a full connection table end an attempt but say
nothing about the upload: the same attempt a little later succeeds. Anything else (data a constraint
refuses, a statement past its budget, a bug) would fail again the same way, so it must fail at once.

`retry_transient` runs an attempt again after a transient error, on a fresh connection, backing off from
FIRST_DELAY_SECONDS, doubling up to MAX_DELAY_SECONDS, until the budget (counted from the first failure)
is spent. The attempt must be safe to restart from the top: the ingestion's is (a re-run deletes what a
broken attempt staged, and an upload whose apply committed is `done` and returns at once).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

import psycopg
from django.db import DEFAULT_DB_ALIAS, connections
from django.db import InterfaceError as DjangoInterfaceError
from django.db import OperationalError as DjangoOperationalError

logger = logging.getLogger("pipeline.ingest")

T = TypeVar("T")

FIRST_DELAY_SECONDS = 1.0
MAX_DELAY_SECONDS = 30.0

TRANSIENT_SQLSTATE_CLASSES = frozenset({"08"})  # connection exceptions
TRANSIENT_SQLSTATES = frozenset(
    {
        "57P01",  # admin_shutdown: the server is stopping (or pg_terminate_backend)
        "57P02",  # crash_shutdown: another backend crashed and the server is restarting
        "57P03",  # cannot_connect_now: the server is starting up or shutting down
        "40001",  # serialization_failure
        "40P01",  # deadlock_detected
        "53300",  # too_many_connections
        "25006",  # read_only_sql_transaction: after a failover the old primary answers as a standby
    }
)
LOST_SERVER_ERRORS = (DjangoOperationalError, psycopg.OperationalError)
MISUSE_ERRORS = (DjangoInterfaceError, psycopg.InterfaceError)


def sqlstate(error: BaseException | None) -> str | None:
    """The SQLSTATE of a database error (psycopg's, or the Django error that wraps it), or None."""
    while error is not None:
        code = getattr(error, "sqlstate", None)
        if code:
            return code
        error = error.__cause__
    return None


def transient_database_error(error: BaseException, connection=None) -> bool:
    """Whether `error` is a database fault that waiting out can fix (see TRANSIENT_SQLSTATES).

    With no SQLSTATE the server never answered. An operational error then means the connection was refused,
    reset or closed: transient, even while libpq still reports the connection as open (right after a failed
    COPY write it does, until the next use). An interface error is transient only when it left `connection`
    (the Django connection it came from) unusable; on a usable one it is our misuse, such as a closed cursor."""
    code = sqlstate(error)
    if code is not None:
        return code in TRANSIENT_SQLSTATES or code[:2] in TRANSIENT_SQLSTATE_CLASSES
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, LOST_SERVER_ERRORS):
            return True
        if isinstance(cause, MISUSE_ERRORS):
            return connection is not None and not connection_usable(connection)
        cause = cause.__cause__
    return False


def connection_usable(connection) -> bool:
    raw = connection.connection
    return raw is not None and not raw.closed and not raw.broken


class Backoff:
    """Delays before each retry: FIRST_DELAY_SECONDS doubling up to MAX_DELAY_SECONDS, each taken at random
    between half and all of it (several workers that lost one server do not all come back at once), and
    None once `budget_seconds` have passed since the first failure."""

    def __init__(self, budget_seconds: float):
        self.budget_seconds = budget_seconds
        self.first_failure: float | None = None
        self.ceiling = FIRST_DELAY_SECONDS

    def next_delay(self) -> float | None:
        now = time.monotonic()
        if self.first_failure is None:
            self.first_failure = now
        remaining = self.budget_seconds - (now - self.first_failure)
        if remaining <= 0:
            return None
        delay = self.ceiling * random.uniform(0.5, 1.0)  # noqa: S311 (spreading retries, not a secret)
        self.ceiling = min(self.ceiling * 2, MAX_DELAY_SECONDS)
        return min(delay, remaining)


def connection_drop(using: str = DEFAULT_DB_ALIAS) -> None:
    """Close Django's connection, broken or not, so that the next query opens a fresh one."""
    try:
        connections[using].close()
    except Exception:  # a broken connection may fail to close; Django forgets it either way
        logger.debug("closing a broken connection failed", exc_info=True)


def retry_transient(
    attempt: Callable[[], T],
    *,
    budget_seconds: float,
    what: str,
    give_up: Callable[[BaseException], None] | None = None,
    using: str = DEFAULT_DB_ALIAS,
) -> T:
    """Run `attempt()`; after a transient database error, close the connection, back off and run it again.

    A permanent error propagates at once. So does any error inside a caller's open transaction, which is
    lost with the connection: only that caller can start it again. When the budget is spent, `give_up`
    is called with the last error, which then propagates."""
    backoff = Backoff(budget_seconds)
    retries = 0
    while True:
        try:
            return attempt()
        except Exception as error:
            if not transient_database_error(error, connections[using]) or connections[using].in_atomic_block:
                raise
            delay = backoff.next_delay()
            code = sqlstate(error) or "no SQLSTATE"
            if delay is None:
                logger.error(
                    "%s: transient database errors for %s s (last: %s, %s); giving up",
                    what,
                    budget_seconds,
                    type(error).__name__,
                    code,
                )
                if give_up is not None:
                    connection_drop(using)
                    give_up(error)
                raise
            retries += 1
            logger.warning(
                "%s: transient database error (%s, %s); retry %s in %.1f s",
                what,
                type(error).__name__,
                code,
                retries,
                delay,
            )
            connection_drop(using)
            time.sleep(delay)
