"""The audit tables stay immutable to the application: only `privacy_officer`, through the SECURITY DEFINER
functions of leads 0013 and pipeline 0015 (and 0018: old months of events), redacts or expires them, and only the
privacy services and the retention job enter that role."""

import re
import subprocess
from pathlib import Path

import pytest
from django.db import DataError, InternalError, ProgrammingError, connection, transaction

from equity_connect.db import privacy_officer_context, service_context
from leads.models import LeadAccessRecord, LeadConsentAudit
from tests.factories import LeadAccessRecordFactory, LeadConsentAuditFactory, LeadFactory, StaffUserFactory

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = {
    "lead_consent_audit_erase": "SELECT lead_consent_audit_erase(ARRAY[%s]::uuid[])",
    "lead_consent_audit_expire": "SELECT lead_consent_audit_expire(1826 + %s)",
    "lead_access_records_erase": "SELECT lead_access_records_erase(ARRAY[%s]::uuid[], ARRAY['x'])",
    "lead_access_records_expire": "SELECT lead_access_records_expire(1826 + %s)",
    "pipeline_events_erase": "SELECT pipeline_events_erase(ARRAY[%s]::uuid[], ARRAY['x'])",
    "pipeline_events_expire_detail": "SELECT pipeline_events_expire_detail(365 + %s)",
    "pipeline_events_drop_partitions": "SELECT * FROM pipeline_events_drop_partitions(730 + %s)",
}
# Beyond the fixed search_path: how long a function waits for a lock (and the time zone it reads bounds in).
EXTRA_CONFIG = {"pipeline_events_drop_partitions": ",lock_timeout=5s,TimeZone=UTC"}


@pytest.fixture
def audit_rows():
    lead = LeadFactory()
    LeadConsentAuditFactory(lead=lead, ip_address="198.51.100.7", user_agent="Browser/1")
    staff = StaffUserFactory()
    LeadAccessRecordFactory(lead_id=lead.pk, user_id=staff.pk, action="view", via="admin.lead")
    return lead


def run_as(role: str | None, statement: str, params=()):
    """One statement as `role` (None: the application's login role itself), in a savepoint."""
    with transaction.atomic(), connection.cursor() as cursor:
        if role:
            cursor.execute(f"SET LOCAL ROLE {role}")
        cursor.execute(statement, params)
        rows = cursor.fetchall() if cursor.description else None
        cursor.execute("RESET ROLE")
        return rows


APP_ROLES = [None, "anon", "authenticated", "service_role", "pipeline_writer"]


@pytest.mark.parametrize("role", APP_ROLES)
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE lead_consent_audit SET user_agent = ''",
        "DELETE FROM lead_consent_audit",
        "UPDATE lead_access_records SET reason = ''",
        "DELETE FROM lead_access_records",
    ],
)
def test_the_apps_usual_roles_cannot_change_or_delete_audit_rows(audit_rows, role, statement):
    # Refused by a privilege, a row-level policy that shows no row, or the append-only trigger: never a change.
    try:
        run_as(role, statement)
    except (ProgrammingError, InternalError) as error:
        assert re.search(r"permission denied|append-only", str(error))
    with service_context():
        assert LeadConsentAudit.objects.filter(user_agent="Browser/1").count() == 1
        assert LeadAccessRecord.objects.count() == 1


@pytest.mark.parametrize("role", APP_ROLES)
@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_the_apps_usual_roles_cannot_execute_the_privacy_functions(audit_rows, role, function):
    with pytest.raises(ProgrammingError, match="permission denied for function"):
        run_as(role, FUNCTIONS[function], [str(audit_rows.pk)] if "erase" in function else [0])


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT * FROM lead_consent_audit",
        "UPDATE lead_consent_audit SET user_agent = ''",
        "DELETE FROM lead_consent_audit",
        "SELECT * FROM lead_access_records",
        "DELETE FROM lead_access_records",
        "UPDATE pipeline_events SET event_data = '{}'",
        "SELECT * FROM leads",
        "SELECT privacy_pseudonym(gen_random_uuid())",
    ],
)
def test_the_privacy_role_touches_nothing_but_through_the_functions(audit_rows, statement):
    with pytest.raises(ProgrammingError, match="permission denied"):
        run_as("privacy_officer", statement)


def test_the_privacy_role_redacts_through_the_function(audit_rows):
    with privacy_officer_context(), connection.cursor() as cursor:
        cursor.execute(FUNCTIONS["lead_consent_audit_erase"], [str(audit_rows.pk)])
        assert cursor.fetchone() == (1,)
        cursor.execute(FUNCTIONS["lead_access_records_erase"], [str(audit_rows.pk)])
        assert cursor.fetchone() == (1,)
    with service_context():
        record = LeadConsentAudit.objects.get()
        assert (record.ip_address, record.user_agent) == (None, "")
        assert record.lead_id != audit_rows.pk  # hashed: still one id for every kept record of the lead
        assert LeadAccessRecord.objects.get().lead_id == record.lead_id


@pytest.mark.parametrize("function", ["lead_consent_audit_expire", "lead_access_records_expire"])
def test_the_functions_refuse_fewer_than_five_years(function):
    with pytest.raises(DataError, match="kept at least 1826 days"):
        run_as("privacy_officer", f"SELECT {function}(1825)")
    assert run_as("privacy_officer", f"SELECT {function}(1826)") == [(0,)]


def test_the_privacy_role_is_nologin_holds_no_table_and_the_app_role_may_enter_it():
    assert run_as(None, "SELECT rolcanlogin, rolinherit FROM pg_roles WHERE rolname = 'privacy_officer'") == [
        (False, False)
    ]
    assert run_as(
        None,
        "SELECT count(*) FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) a "
        "WHERE a.grantee = 'privacy_officer'::regrole AND c.relnamespace = 'public'::regnamespace",
    ) == [(0,)]
    executable = run_as(
        None,
        "SELECT p.proname FROM pg_proc p CROSS JOIN LATERAL aclexplode(p.proacl) a "
        "WHERE p.pronamespace = 'public'::regnamespace AND a.grantee = 'privacy_officer'::regrole ORDER BY 1",
    )
    assert [name for (name,) in executable] == sorted(FUNCTIONS)
    definers = run_as(
        None,
        "SELECT p.proname, p.prosecdef, pg_get_userbyid(p.proowner) = pg_get_userbyid(c.relowner), "
        "array_to_string(p.proconfig, ',') FROM pg_proc p, pg_class c "
        "WHERE c.relname = 'lead_consent_audit' AND p.proname = ANY(%s) ORDER BY 1",
        [sorted(FUNCTIONS)],
    )
    assert definers == [
        (name, True, True, "search_path=public, pg_temp" + EXTRA_CONFIG.get(name, "")) for name in sorted(FUNCTIONS)
    ]
    assert run_as(None, "SELECT pg_has_role(current_user, 'privacy_officer', 'MEMBER')") == [(True,)]


def test_only_the_privacy_services_and_the_retention_job_enter_the_privacy_role():
    found = subprocess.run(
        ["git", "grep", "--untracked", "-lF", "privacy_officer_context(", "--", "*.py", ":!tests/"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert set(found.stdout.split()) == {
        "equity_connect/db.py",
        "pipeline/privacy/erase.py",
        "pipeline/retention.py",
    }
