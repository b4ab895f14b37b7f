"""The per-transaction database context: broker scoping by RLS, default deny, nesting, the middleware."""

import time

import pytest
from django.db import connection

from equity_connect.db import broker_context, current_context, db_context, service_context
from tests.factories import BrokerFactory, LeadFactory, StaffUserFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def brokers():
    a, b = BrokerFactory(), BrokerFactory()
    a_leads = [LeadFactory(assigned_broker=a) for _ in range(2)]
    b_leads = [LeadFactory(assigned_broker=b) for _ in range(3)]
    return a, b, a_leads, b_leads


def raw_lead_ids():
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM leads")
        return {row[0] for row in cursor.fetchall()}


def test_unscoped_queries_in_a_broker_context_see_only_that_brokers_leads(brokers):
    from leads.models import Lead

    a, b, a_leads, b_leads = brokers
    with broker_context(a.pk):
        assert set(Lead.objects.values_list("id", flat=True)) == {lead.pk for lead in a_leads}
        assert raw_lead_ids() == {lead.pk for lead in a_leads}
        assert not Lead.objects.filter(pk=b_leads[0].pk).exists()
    with broker_context(b.pk):
        assert Lead.objects.count() == 3


def test_no_context_means_no_domain_rows(brokers):
    from equity_connect.models import PipelineEvent
    from leads.models import Lead
    from security.models import Broker

    assert current_context() is None
    assert Lead.objects.count() == 0
    assert Broker.objects.count() == 0
    assert PipelineEvent.objects.count() == 0
    assert raw_lead_ids() == set()


def test_staging_and_the_view_are_closed_without_a_context(brokers):
    from django.db import ProgrammingError, transaction

    for table in ("leads_staging", "mv_contactable_leads"):
        with (
            pytest.raises(ProgrammingError, match="permission denied"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(f"SELECT count(*) FROM {table}")
    with service_context(), connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM leads_staging")
        assert cursor.fetchone() == (0,)


def test_contexts_nest_and_restore(brokers):
    from leads.models import Lead

    a, b, *_ = brokers
    with broker_context(a.pk):
        with service_context():
            assert Lead.objects.count() == 5
            assert current_context().role == "service_role"
        assert Lead.objects.count() == 2
        with pytest.raises(RuntimeError), broker_context(b.pk):
            assert Lead.objects.count() == 3
            raise RuntimeError("boom")
        assert current_context().broker_id == a.pk
        assert Lead.objects.count() == 2
    assert current_context() is None
    assert Lead.objects.count() == 0


def test_claims_are_visible_to_auth_functions(brokers):
    a, *_ = brokers
    with broker_context(a.pk), connection.cursor() as cursor:
        cursor.execute("SELECT auth.uid(), auth.role(), current_user")
        assert cursor.fetchone() == (a.pk, "authenticated", "authenticated")


@pytest.mark.parametrize(
    "role, kwargs", [("postgres", {}), ("service_role; DROP TABLE leads", {}), ("authenticated", {})]
)
def test_only_known_roles_and_brokers_with_an_id(role, kwargs):
    with pytest.raises(ValueError), db_context(role, **kwargs):
        pass


@pytest.mark.urls("tests.equity_connect.urls_context_probe")
class TestMiddleware:
    def test_broker_request_runs_as_authenticated_with_their_id(self, client, brokers):
        a, *_ = brokers
        client.force_login(a.user)
        assert client.get("/probe/counts").json() == {"orm": 2, "raw": 2, "role": "authenticated"}

    def test_staff_request_runs_as_service_role(self, client, brokers):
        client.force_login(StaffUserFactory())
        assert client.get("/probe/counts").json() == {"orm": 5, "raw": 5, "role": "service_role"}

    @pytest.mark.parametrize("login", [False, True])
    def test_anonymous_or_non_broker_request_sees_nothing(self, client, brokers, login):
        if login:
            client.force_login(UserFactory())
        body = client.get("/probe/counts").json()
        assert body["orm"] == 0 and body["raw"] == 0 and body["role"] not in ("authenticated", "service_role")

    def test_streaming_response_rows_are_read_under_the_request_role(self, client, brokers):
        a, _, a_leads, _ = brokers
        client.force_login(a.user)
        body = b"".join(client.get("/probe/stream").streaming_content).decode().split()
        assert sorted(body) == sorted(str(lead.pk) for lead in a_leads)

    def test_a_request_past_its_budget_is_cancelled_not_stuck(self, client, settings):
        settings.DB_STATEMENT_TIMEOUTS = {**settings.DB_STATEMENT_TIMEOUTS, "web": 0.5}
        client.force_login(StaffUserFactory())
        started = time.monotonic()
        response = client.get("/probe/sleep", {"seconds": 30})
        assert response.status_code == 503 and b"took too long" in response.content
        assert time.monotonic() - started < 5
        assert client.get("/probe/counts").status_code == 200  # the connection is fine afterwards

    def test_a_request_runs_with_the_web_budget(self, client, settings):
        settings.DB_STATEMENT_TIMEOUTS = {**settings.DB_STATEMENT_TIMEOUTS, "web": 12}
        settings.DB_LOCK_TIMEOUTS = {**settings.DB_LOCK_TIMEOUTS, "web": 3}
        client.force_login(StaffUserFactory())
        assert client.get("/probe/timeouts").json() == {"statement_timeout": "12s", "lock_timeout": "3s"}


@pytest.mark.parametrize(("budget", "statement", "lock"), [("ingest", "30min", "1min"), ("job", "5min", "30s")])
def test_each_kind_of_work_has_its_budget_and_an_inner_context_keeps_the_outer_one(budget, statement, lock):
    def current():
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('statement_timeout'), current_setting('lock_timeout')")
            return cursor.fetchone()

    with service_context(budget=budget):
        assert current() == (statement, lock)
        with service_context():
            assert current() == (statement, lock)
    with service_context():
        assert current() == ("30s", "5s")  # the web's, at the top
