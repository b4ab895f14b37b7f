"""The database context that row-level security reads: a role and JWT-style claims per transaction.

Every web request and every job runs inside `db_context(...)`:

    with db_context("authenticated", broker_id=broker.id):   # a broker: RLS limits rows to theirs
        ...
    with service_context():                                   # staff and jobs: every row
        ...

It opens a transaction (`transaction.atomic`), then `SET LOCAL ROLE` and `set_config(..., true)` for the
claims, so the settings end with the transaction and can never leak to the next request on a pooled
connection. Contexts nest: leaving an inner one restores the outer one. With no context the connection
runs as the application's login role, which is NOINHERIT and has no row-level policy: it sees no
domain rows at all (default deny).

Each context also bounds its statements: `statement_timeout` and `lock_timeout` for its kind of work
(`budget`: web, job, ingest, mv_refresh, import; settings DB_STATEMENT_TIMEOUTS and DB_LOCK_TIMEOUTS),
set with the role because a role's own settings do not apply after `SET ROLE`. A context that names no
budget keeps the outer one's, or the web's at the top.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from psycopg.pq import TransactionStatus

ANON = "anon"
AUTHENTICATED = "authenticated"
SERVICE_ROLE = "service_role"
PIPELINE_WRITER = "pipeline_writer"
PRIVACY_OFFICER = "privacy_officer"
ROLES = frozenset({ANON, AUTHENTICATED, SERVICE_ROLE, PIPELINE_WRITER, PRIVACY_OFFICER})
BUDGETS = ("web", "job", "ingest", "mv_refresh", "import")
QUERY_CANCELED = "57014"  # SQLSTATE of a statement cancelled by statement_timeout
LOCK_NOT_AVAILABLE = "55P03"  # SQLSTATE of a lock wait cut short by lock_timeout


@dataclass(frozen=True)
class DbContext:
    role: str
    broker_id: uuid.UUID | None = None
    budget: str = "web"

    @property
    def claims(self) -> dict:
        claims = {"role": self.role}
        if self.broker_id is not None:
            claims["sub"] = str(self.broker_id)
        return claims


def _stack(connection) -> list[DbContext]:
    if not hasattr(connection, "_ec_context_stack"):
        connection._ec_context_stack = []
    return connection._ec_context_stack


def _apply(connection, context: DbContext | None) -> None:
    with connection.cursor() as cursor:
        if context is None:
            cursor.execute("RESET ROLE")
            sub, claims, role = "", "", ""
        else:
            # The role name is never user input: it is checked against ROLES before it gets here.
            cursor.execute(f"SET LOCAL ROLE {context.role}")
            sub = str(context.broker_id) if context.broker_id else ""
            claims, role = json.dumps(context.claims), context.role
        cursor.execute(
            "SELECT set_config('request.jwt.claims', %s, true), set_config('request.jwt.claims.sub', %s, true),"
            " set_config('request.jwt.claim.sub', %s, true), set_config('request.jwt.claim.role', %s, true)",
            [claims, sub, sub, role],
        )
        if context is not None:
            statement_ms, lock_ms = budget_milliseconds(context.budget)
            cursor.execute(
                "SELECT set_config('statement_timeout', %s, true), set_config('lock_timeout', %s, true)",
                [f"{statement_ms}ms", f"{lock_ms}ms"],
            )


def budget_milliseconds(budget: str) -> tuple[int, int]:
    """(statement_timeout, lock_timeout) in milliseconds for a kind of work; 0 would mean unbounded, so never."""
    statements, locks = settings.DB_STATEMENT_TIMEOUTS, settings.DB_LOCK_TIMEOUTS
    statement = float(statements.get(budget, statements["web"]))
    lock = float(locks.get(budget, locks["web"]))
    return max(1, int(statement * 1000)), max(1, int(lock * 1000))


@contextmanager
def db_context(
    role: str,
    *,
    broker_id: uuid.UUID | str | None = None,
    budget: str | None = None,
    using: str = DEFAULT_DB_ALIAS,
) -> Iterator[None]:
    """Run the block in a transaction as `role` with `broker_id` as the claims' `sub`, its statements bounded
    by `budget` (the outer context's when None, else the web's)."""
    if role not in ROLES:
        raise ValueError(f"unknown database role {role!r}")
    if role == AUTHENTICATED and broker_id is None:
        raise ValueError("the authenticated role needs a broker_id")
    if budget is not None and budget not in BUDGETS:
        raise ValueError(f"unknown budget {budget!r}")
    connection = connections[using]
    outer = _stack(connection)[-1] if _stack(connection) else None
    context = DbContext(
        role=role,
        broker_id=uuid.UUID(str(broker_id)) if broker_id is not None else None,
        budget=budget or (outer.budget if outer else "web"),
    )
    with transaction.atomic(using=using):
        stack = _stack(connection)
        _apply(connection, context)
        stack.append(context)
        try:
            yield
        except BaseException:
            # The atomic block rolls back to its savepoint, which also undoes the SET LOCALs made in it.
            stack.pop()
            raise
        stack.pop()
        if _aborted(connection):
            # A statement failed and something above caught it (Django turns a view's exception into a
            # response): nothing more can run in this transaction, so roll it back instead of restoring.
            connection.needs_rollback = True
            return
        _apply(connection, stack[-1] if stack else None)


def _aborted(connection) -> bool:
    raw = connection.connection
    return raw is not None and raw.info.transaction_status == TransactionStatus.INERROR


def service_context(using: str = DEFAULT_DB_ALIAS, *, budget: str | None = None):
    """Staff and background jobs: the `service_role`, which row-level security lets see every row."""
    return db_context(SERVICE_ROLE, budget=budget, using=using)


def broker_context(broker_id: uuid.UUID | str, using: str = DEFAULT_DB_ALIAS):
    """A broker's own rows only (`authenticated` with the broker's id as `auth.uid()`)."""
    return db_context(AUTHENTICATED, broker_id=broker_id, using=using)


def current_context(using: str = DEFAULT_DB_ALIAS) -> DbContext | None:
    stack = _stack(connections[using])
    return stack[-1] if stack else None


@contextmanager
def admin_connection(using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """Point a connection alias at the schema owner (DATABASE_ADMIN_URL) for the duration of the block.

    Migrations and the test database set-up run with it; the application itself never does. The database
    name is kept (the test runner has already switched it to the test database).
    """
    connection = connections[using]
    admin = settings.DATABASE_ADMIN
    keys = ("USER", "PASSWORD", "HOST", "PORT")
    saved = {key: connection.settings_dict.get(key) for key in keys}
    if all(saved[key] == admin.get(key) for key in keys):
        yield
        return
    connection.close()
    connection.settings_dict.update({key: admin.get(key) for key in keys})
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.update(saved)


@contextmanager
def direct_connection(using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """Run the block on a connection straight to PostgreSQL (DATABASE_DIRECT_URL), not through the pooler.

    Behind a transaction-mode pooler (PgBouncer) each transaction may land on another server session, so work
    that needs ONE session from start to finish uses this: the ingestion's session-level advisory lock (held
    across its staging and apply transactions), its temporary tables and `temp_buffers`. Only this thread's
    connection changes (Django keeps one per thread), and only the address: same role, same database. Without
    DATABASE_DIRECT_URL (no pooler) it changes nothing. Not inside a transaction: it closes the connection."""
    connection = connections[using]
    direct = settings.DATABASE_DIRECT
    keys = ("USER", "PASSWORD", "HOST", "PORT")
    saved = connection.settings_dict
    if all(saved.get(key) == direct.get(key) for key in keys):
        yield
        return
    if connection.in_atomic_block:
        raise RuntimeError("direct_connection() cannot switch a connection inside a transaction")
    connection.close()
    connection.settings_dict = {**saved, **{key: direct.get(key) for key in keys}}
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict = saved


def pipeline_writer_context(using: str = DEFAULT_DB_ALIAS, *, budget: str | None = "ingest"):
    """The ingestion of partner files: `pipeline_writer`, which may stage rows, insert leads and update only
    the columns the apply writes (pipeline/ingest/privileges.py), append events and DLQ rows — no more."""
    return db_context(PIPELINE_WRITER, budget=budget, using=using)


def privacy_officer_context(using: str = DEFAULT_DB_ALIAS, *, budget: str | None = None):
    """Erasure and retention of audit data: `privacy_officer`, which holds no table privilege and may only call
    the SECURITY DEFINER functions that redact or expire consent records, access records and event details
    (leads migration 0013, pipeline 0015). Entered only by the privacy command and admin (pipeline/privacy) and
    the retention job (pipeline/retention.py); tests/equity_connect/test_privacy_role.py checks both."""
    return db_context(PRIVACY_OFFICER, budget=budget, using=using)
