"""Row-level security in plain SQL, as the seed writes its test, and the grants of each role."""

import json

import pytest
from django.db import ProgrammingError, connection, transaction

from equity_connect.db import service_context
from equity_connect.models import PipelineEvent
from pipeline.ingest.privileges import UPDATABLE
from tests.factories import (
    BrokerFactory,
    ConsentTokenFactory,
    LeadFactory,
    PipelineDLQFactory,
    PipelineEventFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_brokers():
    a, b = BrokerFactory(), BrokerFactory()
    for _ in range(3):
        LeadFactory(assigned_broker=a)
    for _ in range(5):
        LeadFactory(assigned_broker=b)
    LeadFactory(assigned_broker=None)
    return a, b


def run_sql(*statements):
    """Run statements on the test's connection, in a savepoint; return the last statement's rows.

    The role and claims are reset afterwards (an error rolls the savepoint back, which undoes them too)."""
    with transaction.atomic(), connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)
        rows = cursor.fetchall() if cursor.description else None
        cursor.execute(
            "RESET ROLE; RESET request.jwt.claims.sub; RESET request.jwt.claims; RESET request.jwt.claim.sub"
        )
        return rows


def test_seed_phase_4_3_broker_sees_exactly_their_assigned_leads(two_brokers):
    a, b = two_brokers
    for broker, expected in ((a, 3), (b, 5)):
        rows = run_sql(
            "SET ROLE authenticated;",
            f"SET request.jwt.claims.sub TO '{broker.pk}';",
            "SELECT COUNT(*) FROM leads; -- Should match assigned count",
        )
        assert rows == [(expected,)]


def test_json_claims_form_and_supabase_singular_spelling(two_brokers):
    a, b = two_brokers
    claims = json.dumps({"sub": str(b.pk), "role": "authenticated"})
    assert run_sql(
        "SET ROLE authenticated", f"SET request.jwt.claims TO '{claims}'", "SELECT COUNT(*) FROM leads"
    ) == [(5,)]
    assert run_sql(
        "SET ROLE authenticated", f"SET request.jwt.claim.sub TO '{a.pk}'", "SELECT COUNT(*) FROM leads"
    ) == [(3,)]


def test_seed_phase_6_3_anon_sees_nothing_and_service_role_sees_all(two_brokers):
    assert run_sql("SET ROLE anon", "SELECT COUNT(*) FROM leads") == [(0,)]
    assert run_sql("SET ROLE service_role", "SELECT COUNT(*) FROM leads") == [(9,)]
    # authenticated without a subject: nothing
    assert run_sql("SET ROLE authenticated", "SELECT COUNT(*) FROM leads") == [(0,)]


def test_broker_cannot_insert_or_update_another_brokers_lead(two_brokers):
    a, b = two_brokers
    with service_context():
        b_lead = b.leads.first()
    # UPDATE of a row the policy hides touches nothing
    assert (
        run_sql(
            "SET ROLE authenticated",
            f"SET request.jwt.claims.sub TO '{a.pk}'",
            f"UPDATE leads SET first_name = 'Hijacked' WHERE id = '{b_lead.pk}' RETURNING id",
        )
        == []
    )
    # re-assigning an own lead to B fails the WITH CHECK
    with service_context():
        a_lead = a.leads.first()
    with pytest.raises(ProgrammingError, match="row-level security"):
        run_sql(
            "SET ROLE authenticated",
            f"SET request.jwt.claims.sub TO '{a.pk}'",
            f"UPDATE leads SET assigned_broker_id = '{b.pk}' WHERE id = '{a_lead.pk}'",
        )
    with pytest.raises(ProgrammingError, match="row-level security"):
        run_sql(
            "SET ROLE authenticated",
            f"SET request.jwt.claims.sub TO '{a.pk}'",
            f"INSERT INTO leads (first_name, assigned_broker_id) VALUES ('X', '{b.pk}')",
        )
    # inserting an own lead works
    rows = run_sql(
        "SET ROLE authenticated",
        f"SET request.jwt.claims.sub TO '{a.pk}'",
        f"INSERT INTO leads (first_name, assigned_broker_id) VALUES ('Mine', '{a.pk}') RETURNING 1",
    )
    assert rows == [(1,)]


def test_brokers_cannot_read_the_materialized_view(two_brokers):
    a, _ = two_brokers
    for role in ("authenticated", "anon"):
        with pytest.raises(ProgrammingError, match="permission denied"):
            run_sql(
                f"SET ROLE {role}",
                f"SET request.jwt.claims.sub TO '{a.pk}'",
                "SELECT COUNT(*) FROM mv_contactable_leads",
            )
    assert run_sql("SET ROLE service_role", "SELECT COUNT(*) FROM mv_contactable_leads") is not None


@pytest.mark.parametrize("table", ["consent_tokens", "pipeline_events", "pipeline_dlq"])
def test_rls_on_consent_tokens_events_and_dlq(two_brokers, table):
    a, b = two_brokers
    with service_context():
        a_lead, b_lead = a.leads.first(), b.leads.first()
    ConsentTokenFactory(lead=a_lead, broker=a)
    ConsentTokenFactory(lead=b_lead, broker=b)
    PipelineEventFactory(event_type="consent_given", lead_id=a_lead.pk, broker_id=a.pk)
    PipelineEventFactory(event_type="consent_given", lead_id=b_lead.pk, broker_id=b.pk)
    PipelineDLQFactory(broker=a)
    PipelineDLQFactory(broker=b)
    forced = run_sql(f"SELECT relrowsecurity FROM pg_class WHERE relname = '{table}'")
    assert forced == [(True,)]
    own = run_sql("SET ROLE authenticated", f"SET request.jwt.claims.sub TO '{a.pk}'", f"SELECT COUNT(*) FROM {table}")
    assert own == [(1,)]
    assert run_sql("SET ROLE service_role", f"SELECT COUNT(*) FROM {table} WHERE broker_id IS NOT NULL") == [(2,)]


def test_pipeline_writer_has_exactly_the_seeds_grants():
    rows = run_sql(
        "SELECT c.relname, string_agg(a.privilege_type, ',' ORDER BY a.privilege_type) "
        "FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) a "
        "WHERE a.grantee = 'pipeline_writer'::regrole AND c.relnamespace = 'public'::regnamespace "
        "AND c.relkind IN ('r', 'm', 'v', 'p') GROUP BY c.relname"
    )
    assert dict(rows) == {
        "leads": "INSERT,SELECT",  # UPDATE on the listed columns only (next test)
        "leads_staging": "DELETE,INSERT,SELECT,UPDATE",
        "pipeline_events": "INSERT",
        "pipeline_dlq": "INSERT,SELECT",
        "ingest_replay_guard": "DELETE,INSERT,SELECT",  # DELETE: a failed upload's guard only (policy)
        "uploads": "INSERT,SELECT",  # UPDATE on the listed columns only; INSERT as `received` (the upload API)
        "partner_key_allowed_brokers": "SELECT",  # which brokers a key may route to
        "possible_duplicates": "INSERT,SELECT",
        "verification_code_map": "SELECT",
        "mv_contactable_leads": "SELECT",
        "suppressions": "SELECT",  # the apply marks suppressed leads and rejects an erased person's rows
        "dnc_registry_numbers": "SELECT",  # and marks leads whose phone is on the DNC registry
        "lead_score_weights": "SELECT",  # upsert_lead() scores the leads it writes with the rule's weights
    }
    functions = run_sql(
        "SELECT p.proname FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace "
        "AND has_function_privilege('pipeline_writer', p.oid, 'EXECUTE') "
        "AND p.proname IN ('upsert_lead', 'refresh_contactable_leads', 'cleanup_old_replay_guards', "
        "'cleanup_old_consent_tokens') ORDER BY 1"
    )
    assert [name for (name,) in functions] == ["refresh_contactable_leads", "upsert_lead"]


def test_pipeline_writer_updates_exactly_the_columns_the_ingestion_writes():
    rows = run_sql(
        "SET ROLE pipeline_writer",  # the view shows the privileges of the enabled role
        "SELECT table_name, column_name FROM information_schema.column_privileges "
        "WHERE grantee = 'pipeline_writer' AND privilege_type = 'UPDATE' AND table_schema = 'public' "
        "AND table_name <> 'leads_staging'",  # its own scratch table: every column
    )
    granted = {}
    for table, column in rows:
        granted.setdefault(table, set()).add(column)

    assert granted == {table: set(columns) for table, columns in UPDATABLE.items()}
    assert {"assigned_broker_id", "email", "consent"} <= granted["leads"]  # merged / reset by the apply
    assert not {"id", "merged_into_id", "do_not_contact_reason", "source", "created_at"} & granted["leads"]
    with pytest.raises(ProgrammingError, match="permission denied"):
        run_sql("SET ROLE pipeline_writer", "UPDATE leads SET merged_into_id = NULL")
    with pytest.raises(ProgrammingError, match="permission denied"):
        run_sql("SET ROLE pipeline_writer", "UPDATE uploads SET broker_id = NULL")
    with pytest.raises(ProgrammingError, match="permission denied"):
        run_sql("SET ROLE pipeline_writer", "SELECT email FROM brokers")  # territory columns only


def test_an_event_about_a_lead_names_that_leads_broker(two_brokers):
    a, b = two_brokers
    with service_context():
        b_lead = b.leads.first()
        unassigned = LeadFactory(assigned_broker=None)
    insert = (
        "INSERT INTO pipeline_events (event_type, lead_id, broker_id, status)"
        " VALUES ('note_added', '{}', {}, 'success')"
    )
    as_a = ("SET ROLE authenticated", f"SET request.jwt.claims.sub TO '{a.pk}'")

    with pytest.raises(ProgrammingError, match="row-level security"):
        run_sql(*as_a, insert.format(b_lead.pk, f"'{a.pk}'"))  # B's lead on A's timeline
    with pytest.raises(ProgrammingError, match="row-level security"):
        run_sql(*as_a, insert.format(unassigned.pk, f"'{a.pk}'"))
    with pytest.raises(ProgrammingError, match="row-level security"):
        run_sql("SET ROLE pipeline_writer", insert.format(b_lead.pk, f"'{a.pk}'"))
    with pytest.raises(ProgrammingError, match="row-level security"):
        run_sql("SET ROLE pipeline_writer", insert.format(b_lead.pk, "NULL"))
    with service_context():
        a_lead = a.leads.first()
    run_sql(*as_a, insert.format(a_lead.pk, f"'{a.pk}'"))
    run_sql("SET ROLE pipeline_writer", insert.format(b_lead.pk, f"'{b.pk}'"))
    run_sql("SET ROLE pipeline_writer", insert.format(unassigned.pk, f"'{a.pk}'"))  # being assigned to A
    with service_context():
        assert PipelineEvent.objects.filter(event_type="note_added").count() == 3


def test_roles_are_nologin_and_the_app_role_cannot_bypass_rls():
    rows = dict(
        run_sql(
            "SELECT rolname, rolcanlogin FROM pg_roles "
            "WHERE rolname IN ('anon', 'authenticated', 'service_role', 'pipeline_writer')"
        )
    )
    assert rows == {"anon": False, "authenticated": False, "service_role": False, "pipeline_writer": False}
    assert run_sql("SELECT rolsuper, rolbypassrls, rolinherit FROM pg_roles WHERE rolname = current_user") == [
        (False, False, False)
    ]
    with pytest.raises(ProgrammingError, match="must be owner"):
        run_sql("ALTER TABLE leads DISABLE ROW LEVEL SECURITY")


def test_policies_evaluate_auth_uid_once_per_query():
    definitions = run_sql("SELECT qual FROM pg_policies WHERE tablename = 'leads' AND qual LIKE '%auth.uid%'")
    assert definitions and all("SELECT auth.uid()" in qual for (qual,) in definitions)


def test_the_internet_facing_paths_never_take_the_service_role():
    """The upload API and the ingestion of partner files run as pipeline_writer; only the key lookup (in
    security/upload_verification.py) and staff actions (the DLQ's reprocess) use the service role."""
    import inspect

    from pipeline.ingest import services, staging
    from pipeline.intake import views

    sources = {
        "pipeline/intake/views.py": inspect.getsource(views),
        "pipeline/ingest/staging.py": inspect.getsource(staging),
        "upload_ingest and its steps": "".join(
            inspect.getsource(function)
            for function in (services.upload_ingest, services._ingest_attempt, services._ingest, services._fail)
        ),
    }
    assert {name: "service_context" in source for name, source in sources.items()} == dict.fromkeys(sources, False)
    assert all("pipeline_writer_context" in source for source in sources.values())
