"""Test set-up: a real PostgreSQL test database, created and migrated by the schema owner (as in
production), then used by the application's own login role, so row-level security applies in tests
exactly as it does in the running app."""

from __future__ import annotations

import pytest
from axes.utils import reset as axes_reset
from django.conf import settings
from django.db import connection
from psycopg import sql

from equity_connect.db import admin_connection, broker_context, service_context

BACKDATE_EVENTS = """
CREATE OR REPLACE FUNCTION tests_pipeline_events_backdate(p_ids bigint[], p_at timestamptz) RETURNS integer
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
  WITH moved AS (UPDATE pipeline_events SET created_at = p_at WHERE id = ANY(p_ids) RETURNING 1)
  SELECT count(*)::integer FROM moved
$$;
REVOKE ALL ON FUNCTION tests_pipeline_events_backdate(bigint[], timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tests_pipeline_events_backdate(bigint[], timestamptz) TO service_role;
"""


@pytest.fixture(scope="session")
def django_db_setup(request, django_test_environment, django_db_blocker, django_db_keepdb, django_db_createdb):
    from django.test.utils import setup_databases, teardown_databases

    with django_db_blocker.unblock(), admin_connection():
        db_cfg = setup_databases(
            verbosity=request.config.option.verbose,
            interactive=False,
            keepdb=django_db_keepdb and not django_db_createdb,
        )
        with connection.cursor() as cursor:
            # Tests only: transactional tests empty tables between tests with Django's flush, one TRUNCATE of every
            # model's table as the login role, `pipeline_events` included (append-only in production, pipeline
            # 0026; tests/equity_connect/test_audit_trail.py takes this grant away to show the login role's own).
            cursor.execute(
                sql.SQL("GRANT TRUNCATE ON ALL TABLES IN SCHEMA public TO {}").format(
                    sql.Identifier(settings.DATABASE_APP_ROLE)
                )
            )
            # Tests only: tests date events in the past (tests/factories.py `backdate_events`); no application role
            # may UPDATE the trail, so the owner's function does it, for service_role.
            cursor.execute(BACKDATE_EVENTS)
    yield
    if not django_db_keepdb:
        with django_db_blocker.unblock(), admin_connection():
            teardown_databases(db_cfg, verbosity=request.config.option.verbose)


@pytest.fixture
def service(db):
    """Run the test body as staff/jobs do: the service_role context."""
    with service_context():
        yield


@pytest.fixture
def as_broker(db):
    """`with as_broker(broker): ...` runs a block in that broker's RLS context."""
    return lambda broker: broker_context(getattr(broker, "pk", broker))


@pytest.fixture
def axes_clean(db):
    """A clean django-axes state around a test: a lockout must never leak into the next one (modules that log in
    use it with `pytestmark = pytest.mark.usefixtures("axes_clean")`)."""
    axes_reset()
    yield
    axes_reset()


@pytest.fixture
def running_system(db, settings):
    """A system whose jobs ran as they should today (MV refreshed, the day fed, a live Instantly key), so that
    no dead-man's switch fires and an alert test sees only the rule it is about."""
    from django.utils import timezone

    from equity_connect.events import record_event
    from pipeline.campaigns.feeder import business_date_for

    settings.INSTANTLY_API_KEY = "live-key"  # not in dry-run mode (nothing here calls Instantly)
    today = business_date_for(timezone.now()).isoformat()
    with service_context():
        record_event("mv_refreshed", data={"job": "refresh_contactable_leads"})
        record_event("feeder_run", data={"job": "campaign_feeder", "business_date": today, "limit": 250, "fed": 250})
