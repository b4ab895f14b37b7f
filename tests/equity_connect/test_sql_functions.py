"""The seed's SQL functions: upsert_lead (merge semantics, concurrency), refresh_contactable_leads (concurrent
refresh, lock released on failure), and the cleanups."""

import threading

import psycopg
import pytest
from django.db import connection
from django.utils import timezone

from equity_connect.db import service_context
from leads.models import Lead
from tests.factories import BrokerFactory, ConsentTokenFactory, IngestReplayGuardFactory, LeadFactory
from tests.pg import blocked_by, connect
from tests.waiting import wait_for

UPSERT = (
    "SELECT upsert_lead(p_mak => %(mak)s, p_apn => %(apn)s, p_addr_hash => %(addr_hash)s, "
    "p_first_name => %(first_name)s, p_email => %(email)s, p_phone => %(phone)s, "
    "p_email_verified => %(email_verified)s, p_phone_verified => %(phone_verified)s, "
    "p_email_verification_codes => %(email_codes)s, p_phone_verification_codes => %(phone_codes)s, "
    "p_melissa_payload => %(payload)s::jsonb, p_assigned_broker_id => %(broker)s)"
)


def upsert(**values):
    params = {
        "mak": None,
        "apn": None,
        "addr_hash": None,
        "first_name": None,
        "email": None,
        "phone": None,
        "email_verified": False,
        "phone_verified": False,
        "email_codes": [],
        "phone_codes": [],
        "payload": "{}",
        "broker": None,
        **values,
    }
    with service_context(), connection.cursor() as cursor:
        cursor.execute(UPSERT, params)
        return cursor.fetchone()[0]


@pytest.mark.django_db
class TestUpsertLead:
    def test_inserts_a_new_lead_with_deduplicated_codes(self):
        lead_id = upsert(mak="M1", first_name="Ann", email="ann@example.com", email_codes=["ES01", "ES01", "ES02"])
        with service_context():
            lead = Lead.objects.get(pk=lead_id)
        assert (lead.mak, lead.first_name, lead.email) == ("M1", "Ann", "ann@example.com")
        assert lead.email_verification_codes == ["ES01", "ES02"]
        assert lead.campaign_status == "new"

    def test_merge_keeps_contact_data_ors_flags_unions_codes_merges_payload(self):
        first = upsert(
            mak="M2",
            email="old@example.com",
            phone="+14155550100",
            email_verified=True,
            email_codes=["ES01"],
            phone_codes=["PS01"],
            payload='{"a": 1, "b": 1}',
        )
        second = upsert(
            mak="M2",
            apn="APN-9",
            email="new@example.com",
            phone="+14155550199",
            email_verified=False,
            phone_verified=True,
            email_codes=["ES02", "ES01"],
            phone_codes=["PS01"],
            payload='{"b": 2, "c": 3}',
            first_name="Late",
        )
        assert first == second
        with service_context():
            lead = Lead.objects.get(pk=first)
        assert (lead.email, lead.phone) == ("old@example.com", "+14155550100")
        assert (lead.email_verified, lead.phone_verified) == (True, True)
        assert lead.email_verification_codes == ["ES01", "ES02"]
        assert lead.phone_verification_codes == ["PS01"]
        assert lead.melissa_payload == {"a": 1, "b": 2, "c": 3}
        assert lead.apn == "APN-9" and lead.first_name == "Late"

    @pytest.mark.parametrize("key", ["apn", "addr_hash"])
    def test_matches_by_apn_then_address_hash(self, key):
        existing = LeadFactory(mak=None)
        assert upsert(**{key: getattr(existing, key), "mak": "NEW-MAK"}) == existing.pk
        with service_context():
            existing.refresh_from_db()
        assert existing.mak == "NEW-MAK"

    def test_mak_wins_over_apn(self):
        by_mak = LeadFactory()
        LeadFactory(apn="APN-X")
        assert upsert(mak=by_mak.mak, apn="APN-Y") == by_mak.pk

    def test_do_not_contact_stays(self):
        lead = LeadFactory(campaign_status="do_not_contact")
        upsert(mak=lead.mak, email_verified=True)
        with service_context():
            lead.refresh_from_db()
        assert lead.campaign_status == "do_not_contact"

    def test_needs_a_dedupe_key(self):
        with pytest.raises(Exception, match="dedupe key"):
            upsert(first_name="Nobody")


@pytest.mark.django_db(transaction=True)
def test_eight_concurrent_upserts_for_one_mak_make_one_lead():
    broker = BrokerFactory()
    results, errors = [], []

    def worker(n):
        try:
            with connect(autocommit=False) as conn:
                conn.execute("SET ROLE service_role")
                row = conn.execute(
                    "SELECT upsert_lead(p_mak => 'RACE-1', p_email => %s, p_email_verification_codes => %s, "
                    "p_assigned_broker_id => %s)",
                    [f"w{n}@example.com", [f"C{n}"], broker.pk],
                ).fetchone()
                conn.commit()
                results.append(row[0])
        except Exception as error:  # surfaced by the assertion below
            errors.append(error)

    # A lock on `leads` holds all eight where they write, so that they then race for the one key together.
    with connect(admin=True, autocommit=False) as holder:
        holder.execute("LOCK TABLE leads IN EXCLUSIVE MODE")
        threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        wait_for(lambda: len(blocked_by(holder.info.backend_pid)) == 8, message="all eight upserts waiting on leads")
        holder.rollback()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert len(set(results)) == 1
    with service_context():
        lead = Lead.objects.get(mak="RACE-1")
        assert Lead.objects.filter(mak="RACE-1").count() == 1
    assert sorted(lead.email_verification_codes) == sorted(f"C{n}" for n in range(8))


@pytest.mark.django_db(transaction=True)
def test_refresh_contactable_leads_refreshes_concurrently_and_a_failure_releases_the_lock():
    broker = BrokerFactory()
    LeadFactory(assigned_broker=broker, contactable=True)
    LeadFactory(assigned_broker=broker)  # not consented: not contactable
    with connect() as conn:
        conn.execute("SET ROLE service_role")
        assert conn.execute("SELECT refresh_contactable_leads()").fetchone() == (True,)
        assert conn.execute("SELECT count(*) FROM mv_contactable_leads").fetchone() == (1,)

        # CONCURRENTLY: readers are not blocked while a refresh runs in another transaction.
        with connect() as refresher:
            refresher.execute("SET ROLE service_role")
            refresher.execute("BEGIN")
            refresher.execute("SELECT refresh_contactable_leads()")
            assert conn.execute("SELECT count(*) FROM mv_contactable_leads").fetchone() == (1,)
            # ...and a second refresh while the first holds the lock says so instead of queueing.
            assert conn.execute("SELECT refresh_contactable_leads()").fetchone() == (False,)
            refresher.execute("COMMIT")

        # Make the refresh fail: another session holds an exclusive lock on leads and we do not wait for it.
        with connect(admin=True) as blocker:
            blocker.execute("BEGIN")
            blocker.execute("LOCK TABLE leads IN ACCESS EXCLUSIVE MODE")
            conn.execute("SET lock_timeout = '100ms'")
            with pytest.raises(psycopg.errors.LockNotAvailable):
                conn.execute("SELECT refresh_contactable_leads()")
            blocker.execute("ROLLBACK")
        conn.execute("RESET lock_timeout")
        # Nobody holds the refresh lock: another session can take it at once.
        with connect() as other:
            assert other.execute("SELECT pg_try_advisory_lock(hashtext('refresh_contactable_leads'))").fetchone() == (
                True,
            )
            other.execute("SELECT pg_advisory_unlock(hashtext('refresh_contactable_leads'))")
        LeadFactory(assigned_broker=broker, contactable=True)
        assert conn.execute("SELECT refresh_contactable_leads()").fetchone() == (True,)
        assert conn.execute("SELECT count(*) FROM mv_contactable_leads").fetchone() == (2,)


@pytest.mark.django_db
def test_cleanups_remove_only_old_rows():
    old = timezone.now() - timezone.timedelta(days=31)
    ConsentTokenFactory(used_at=old)
    ConsentTokenFactory(expires_at=old)
    fresh = ConsentTokenFactory(used_at=timezone.now())
    stale_guard, fresh_guard = IngestReplayGuardFactory(), IngestReplayGuardFactory()
    with service_context(), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE ingest_replay_guard SET created_at = now() - interval '8 days' WHERE content_sha256 = %s",
            [stale_guard.content_sha256],
        )
        cursor.execute("SELECT cleanup_old_consent_tokens(), cleanup_old_replay_guards()")
        assert cursor.fetchone() == (2, 1)
        cursor.execute("SELECT id FROM consent_tokens")
        assert [row[0] for row in cursor.fetchall()] == [fresh.pk]
        cursor.execute("SELECT content_sha256 FROM ingest_replay_guard")
        assert [row[0] for row in cursor.fetchall()] == [fresh_guard.content_sha256]
