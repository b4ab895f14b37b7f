"""The campaign feeder: one feed per Los Angeles business day, live re-checks, Instantly results, the DLQ."""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from equity_connect.db import service_context
from equity_connect.models import PipelineEvent
from leads.brokers import broker_offboard
from leads.models import Lead
from pipeline.campaigns.feeder import business_date_for, campaign_feeder_run
from pipeline.campaigns.push_retry import dlq_retry_run
from pipeline.models import FeederRun, PipelineDLQ
from security.models import Broker
from tests.factories import BrokerFactory, LeadFactory
from tests.pg import blocked_by
from tests.pg import connect as second_connection
from tests.pipeline import jobs_support
from tests.pipeline.jobs_support import CAMPAIGN_ID, mv_refresh, queued_leads
from tests.waiting import wait_for

fake_instantly = jobs_support.fake_instantly

MONDAY = dt.date(2026, 1, 5)
TUESDAY = dt.date(2026, 1, 6)
SATURDAY = dt.date(2026, 1, 10)


def active_ids() -> set:
    with service_context():
        return set(Lead.objects.filter(campaign_status="active").values_list("id", flat=True))


def events(event_type: str) -> list[PipelineEvent]:
    with service_context():
        return list(PipelineEvent.objects.filter(event_type=event_type).order_by("id"))


def times_each(lead_ids, times: int) -> Counter:
    """{email: times} for these leads: what the fake's per-email counters must show."""
    with service_context():
        emails = [email.lower() for email in Lead.objects.filter(pk__in=lead_ids).values_list("email", flat=True)]
    assert len(emails) == len(set(lead_ids))
    return Counter(dict.fromkeys(emails, times))


@pytest.mark.parametrize(
    ("instant", "expected"),
    [
        ("2026-01-05T14:00:00+00:00", dt.date(2026, 1, 5)),  # 06:00 PST Monday
        ("2026-07-06T13:00:00+00:00", dt.date(2026, 7, 6)),  # 06:00 PDT Monday
        ("2026-01-06T03:00:00+00:00", dt.date(2026, 1, 5)),  # still Monday evening in Los Angeles
    ],
)
def test_business_date_is_the_intended_instant_in_los_angeles(instant, expected):
    assert business_date_for(instant) == expected


@pytest.mark.django_db
def test_two_runs_for_one_business_day_feed_the_limit_once(fake_instantly, settings):
    settings.FEEDER_DAILY_LIMIT = 250
    queued_leads(600)
    mv_refresh()

    first = campaign_feeder_run(intended_date="2026-01-05T14:00:00+00:00")
    second = campaign_feeder_run(business_date=MONDAY)

    assert first.status == "success" and first.data["fed"] == 250
    assert second.status == "skipped" and second.data["fed"] == 0 and second.data["already_fed"]
    assert "2026-01-05 was already fed" in second.message
    assert len(active_ids()) == 250
    # Instantly got one request in all, and each fed lead in it once: the second run sent nothing.
    assert len(fake_instantly.requests) == 1
    assert fake_instantly.lead_adds_received() == times_each(active_ids(), 1)
    assert fake_instantly.created_count(CAMPAIGN_ID) == times_each(active_ids(), 1)
    with service_context():
        run = FeederRun.objects.get()
        assert (run.business_date, run.status, run.leads_claimed, run.leads_pushed) == (MONDAY, "done", 250, 250)
        assert (
            Lead.objects.filter(
                campaign_status="active", instantly_lead_id__isnull=False, added_to_campaign_at__isnull=False
            ).count()
            == 250
        )
    assert len(events("campaign_added")) == 250
    feeder_events = events("feeder_run")  # the real feed only: the no-op is a skip
    assert [e.status for e in feeder_events] == ["success"]
    assert feeder_events[0].duration_ms is not None and feeder_events[0].event_data["fed"] == 250
    assert feeder_events[0].event_data["ready"] == 600  # what the view offered (the short-feed switch reads it)
    skip = events("job_skipped")[-1]
    assert skip.event_data["job"] == "campaign_feeder" and skip.event_data["already_fed"] is True


@pytest.mark.django_db
def test_the_scheduled_task_delivered_twice_feeds_the_day_once(fake_instantly, settings):
    # Two clusters, or django-q2 handing a task out again after a worker timed out: the same scheduled
    # task for Monday 06:00 runs twice.
    from pipeline.tasks import campaign_feeder_task

    settings.FEEDER_DAILY_LIMIT = 5
    queued_leads(12)
    mv_refresh()

    first = campaign_feeder_task(intended_date="2026-01-05T14:00:00+00:00")
    second = campaign_feeder_task(intended_date="2026-01-05T14:00:00+00:00")

    assert first.startswith("fed 5 leads for 2026-01-05") and "2026-01-05 was already fed" in second
    assert len(fake_instantly.requests) == 1
    assert fake_instantly.lead_adds_received() == times_each(active_ids(), 1)


@pytest.mark.django_db
def test_a_saturday_feeds_none(fake_instantly):
    queued_leads(20)
    mv_refresh()

    result = campaign_feeder_run(business_date=SATURDAY)

    assert result.status == "skipped" and result.data["fed"] == 0 and result.data["weekend"] is True
    assert "Sat 2026-01-10 is not a business day" in result.message
    assert events("feeder_run") == [] and events("job_skipped")[-1].event_data["weekend"] is True
    assert active_ids() == set()
    assert fake_instantly.requests == []
    with service_context():
        assert not FeederRun.objects.exists()


@pytest.mark.django_db
def test_leads_that_stopped_being_eligible_after_the_refresh_are_not_fed(fake_instantly, settings):
    settings.FEEDER_DAILY_LIMIT = 250
    scores = [(i * 37) % 101 for i in range(1000)]
    leads = queued_leads(1000, scores=scores)
    mv_refresh()
    # After the refresh, some of the best leads change: each kind of "no longer contactable".
    best = sorted(leads, key=lambda lead: -lead.lead_score)[:60]
    changes = [
        {"consent": False, "consented_at": None},
        {"campaign_status": "do_not_contact"},
        {"campaign_status": "unsubscribed"},
        {"campaign_status": "bounced"},
        {"email": None},
        {"email": ""},
    ]
    ineligible = set()
    with service_context():
        for index, lead in enumerate(best):
            Lead.objects.filter(pk=lead.pk).update(**changes[index % len(changes)])
            ineligible.add(lead.pk)

    result = campaign_feeder_run(business_date=MONDAY)

    fed = active_ids()
    assert result.data["fed"] == 250 and len(fed) == 250
    assert not fed & ineligible  # the exploration draw's live checks too
    # 225 by score, 25 (FEEDER_EXPLORATION_SHARE) at random: the ranked ones are the highest-scored eligible leads.
    explored = {event.lead_id for event in events("campaign_added") if event.event_data["exploration"]}
    assert result.data["explored"] == len(explored) == 25
    ranked = fed - explored
    with service_context():
        eligible = Lead.objects.exclude(pk__in=ineligible | explored)
        lowest_fed = min(eligible.filter(pk__in=ranked).values_list("lead_score", flat=True))
        highest_not_fed = max(eligible.exclude(pk__in=ranked).values_list("lead_score", flat=True))
    assert lowest_fed >= highest_not_fed
    assert fake_instantly.lead_adds_received() == times_each(fed, 1)


@pytest.mark.django_db
def test_the_email_feed_needs_consent_to_email_and_a_verified_email(fake_instantly, settings):
    settings.FEEDER_DAILY_LIMIT = 250
    broker = BrokerFactory()
    ready = queued_leads(3, broker=broker)
    texts_only = queued_leads(3, broker=broker, consent_email=False, consent_sms=True)
    calls_only = queued_leads(3, broker=broker, consent_email=False, consent_phone=True)
    phone_verified_only = queued_leads(3, broker=broker, email_verified=False, phone_verified=True)
    mv_refresh()  # all twelve are in the view (consented, a verified contact point): the live re-check decides
    with service_context():
        assert Lead.objects.contactable().count() == 12

    result = campaign_feeder_run(business_date=MONDAY)

    fed = {lead.pk for lead in ready}
    assert result.data["fed"] == 3 and active_ids() == fed
    assert fake_instantly.lead_adds_received() == times_each(fed, 1)
    with service_context():
        for lead in (*texts_only, *calls_only, *phone_verified_only):
            assert Lead.objects.get(pk=lead.pk).campaign_status == "queued"


@pytest.mark.django_db
def test_a_final_push_failure_requeues_and_the_dlq_retry_never_double_adds(fake_instantly, settings):
    settings.FEEDER_DAILY_LIMIT = 10
    queued_leads(30, scores=list(range(50, 80)))
    mv_refresh()
    fake_instantly.script("500", "503", "502")

    result = campaign_feeder_run(business_date=MONDAY)

    assert result.status == "failure" and result.data["failed"] == 10
    assert active_ids() == set()
    with service_context():
        dlq = PipelineDLQ.objects.get()
        failed_ids = set(dlq.payload["lead_ids"])
        assert dlq.source == "instantly_push" and dlq.retry_after > timezone.now()
        assert len(failed_ids) == 10
        assert Lead.objects.filter(campaign_status="queued", added_to_campaign_at__isnull=True).count() == 30
        assert FeederRun.objects.get().status == "push_failed"
    assert events("feeder_run")[-1].status == "failure"

    # The next day's feed picks up some of the same (still top-scored) leads before the DLQ retry runs.
    settings.FEEDER_DAILY_LIMIT = 4
    assert campaign_feeder_run(business_date=TUESDAY).data["fed"] == 4
    fed_tuesday = {str(pk) for pk in active_ids()}
    assert fed_tuesday <= failed_ids

    # Not due yet: nothing happens. Due: the rest of the batch is pushed, the Tuesday ones are not.
    assert dlq_retry_run().data["rows"] == 0
    with service_context():
        PipelineDLQ.objects.update(retry_after=timezone.now() - dt.timedelta(seconds=1))
    retry = dlq_retry_run()

    assert retry.status == "success" and retry.data["resolved"] == 1
    # Every lead of the failed batch was sent 4 times: the three failed attempts on Monday, then once more,
    # either by Tuesday's feed or by the DLQ retry, never by both; Instantly accepted and holds each once.
    assert [r["status"] for r in fake_instantly.requests] == [500, 503, 502, 200, 200]
    assert fake_instantly.lead_adds_received() == times_each(failed_ids, 4)
    assert fake_instantly.lead_adds_processed() == times_each(failed_ids, 1)
    assert fake_instantly.created_count(CAMPAIGN_ID) == times_each(failed_ids, 1)
    with service_context():
        dlq.refresh_from_db()
        assert dlq.status == "resolved" and dlq.resolution == "retried" and dlq.attempts == 1
        assert {
            str(pk) for pk in Lead.objects.filter(instantly_lead_id__isnull=False).values_list("id", flat=True)
        } == failed_ids
    assert len(events("campaign_added")) == 10


@pytest.mark.django_db
def test_a_dlq_retry_that_fails_again_backs_off_then_gives_up(fake_instantly, settings):
    settings.FEEDER_DAILY_LIMIT = 3
    settings.DLQ_RETRY_MAX_ATTEMPTS = 2
    queued_leads(3)
    mv_refresh()
    fake_instantly.script(*["503"] * 9)
    campaign_feeder_run(business_date=MONDAY)

    with service_context():
        PipelineDLQ.objects.update(retry_after=timezone.now() - dt.timedelta(seconds=1))
    first = dlq_retry_run()
    with service_context():
        row = PipelineDLQ.objects.get()
        assert first.data["retrying"] == 1 and row.status == "retrying" and row.attempts == 1
        assert row.retry_after > timezone.now() + dt.timedelta(minutes=14)
        assert Lead.objects.filter(campaign_status="queued").count() == 3
        PipelineDLQ.objects.update(retry_after=timezone.now() - dt.timedelta(seconds=1))
    second = dlq_retry_run()
    with service_context():
        row.refresh_from_db()
        assert second.data["gave_up"] == 1 and row.status == "open" and row.retry_after is None
        assert row.attempts == 2
    assert [e.status for e in events("dlq_reprocessed")] == ["retry", "failure"]
    # three attempts by the feed, three by each retry; nothing accepted
    with service_context():
        lead_ids = list(Lead.objects.values_list("id", flat=True))
    assert fake_instantly.lead_adds_received() == times_each(lead_ids, 9)
    assert fake_instantly.lead_adds_processed() == Counter() and fake_instantly.created == []


@pytest.mark.django_db
def test_leads_instantly_skips_are_recorded_with_the_reason(fake_instantly):
    broker = BrokerFactory()
    queued_leads(2, broker=broker, scores=[90, 80])
    blocked = LeadFactory(contactable=True, assigned_broker=broker, lead_score=99, email="blocked@example.net")
    fake_instantly.blocklist.add("blocked@example.net")
    mv_refresh()

    result = campaign_feeder_run(business_date=MONDAY)

    assert result.data["fed"] == 2 and result.data["skipped"] == 1 and result.data["ready"] == 3
    with service_context():
        blocked.refresh_from_db()
        assert blocked.campaign_status == "paused" and blocked.instantly_lead_id is None
        assert FeederRun.objects.get().leads_skipped == 1
    skipped = events("campaign_skipped")
    assert len(skipped) == 1 and skipped[0].lead_id == blocked.pk
    assert skipped[0].event_data["reason"] == "on Instantly's blocklist"
    with service_context():
        lead_ids = list(Lead.objects.values_list("id", flat=True))
    assert len(fake_instantly.requests) == 1 and fake_instantly.lead_adds_received() == times_each(lead_ids, 1)


@pytest.mark.django_db
def test_without_an_api_key_the_feeder_is_a_dry_run_that_changes_nothing(settings):
    settings.INSTANTLY_API_KEY = ""
    queued_leads(5)
    mv_refresh()

    result = campaign_feeder_run(business_date=MONDAY)

    assert result.status == "success"
    assert "DRY RUN (INSTANTLY_API_KEY is not set): would feed 5 leads" in result.message
    assert active_ids() == set()
    with service_context():
        assert not FeederRun.objects.filter(dry_run=False).exists()  # the day is still unfed
        (dry,) = FeederRun.objects.filter(dry_run=True)
        assert (dry.business_date, dry.status, dry.leads_claimed) == (MONDAY, "dry_run", 5)
        assert Lead.objects.filter(campaign_status="queued", added_to_campaign_at__isnull=True).count() == 5
    assert events("feeder_run") == []  # a dry run is not a run: it never hides the last real run's status
    event = events("job_run")[-1]
    assert event.event_data["job"] == "campaign_feeder"
    assert event.event_data["dry_run"] is True and event.event_data["would_feed"] == 5


@pytest.mark.django_db
def test_the_command_feeds_and_says_what_it_did(fake_instantly, capsys):
    queued_leads(3)
    mv_refresh()

    call_command("run_campaign_feeder", "--date", "2026-01-05", "--limit", "2")
    call_command("run_campaign_feeder", "--date", "2026-01-05")
    call_command("run_campaign_feeder", "--date", "2026-01-06", "--dry-run")
    call_command("run_campaign_feeder", "--date", "2026-01-05", "--dry-run")
    call_command("run_campaign_feeder", "--date", "2026-01-10")

    out = capsys.readouterr().out
    assert "fed 2 leads for 2026-01-05" in out
    assert "campaign_feeder: skipped, 2026-01-05 was already fed" in out
    assert "DRY RUN (--dry-run): would feed 1 leads for 2026-01-06" in out
    assert "DRY RUN (--dry-run): 2026-01-05 was already fed" in out
    assert "Sat 2026-01-10 is not a business day: nothing fed" in out
    assert len(active_ids()) == 2
    assert len(fake_instantly.requests) == 1  # the real feed only: skips and dry runs send nothing
    assert fake_instantly.lead_adds_received() == times_each(active_ids(), 1)


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_runs_from_two_connections_feed_the_limit_once(fake_instantly, settings):
    settings.FEEDER_DAILY_LIMIT = 250
    queued_leads(600)
    mv_refresh()
    fake_instantly.script("slow:0.2")  # keep the first run busy while the second starts
    settings.INSTANTLY_READ_TIMEOUT_SECONDS = 2.0
    barrier = threading.Barrier(2)
    results = []

    def run():
        try:
            barrier.wait()
            results.append(campaign_feeder_run(business_date=MONDAY))
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(r.data.get("fed", 0) for r in results) == [0, 250]
    assert len(active_ids()) == 250
    fake_instantly.wait_answered()
    assert len(fake_instantly.requests) == 1
    assert fake_instantly.lead_adds_received() == times_each(active_ids(), 1)
    assert fake_instantly.created_count(CAMPAIGN_ID) == times_each(active_ids(), 1)
    with service_context():
        assert FeederRun.objects.count() == 1
    assert sorted(r.status for r in results) == ["skipped", "success"]
    with service_context():  # leave the view empty for the next tests
        Lead.objects.all().delete()
    mv_refresh()


@pytest.mark.django_db
def test_leads_of_an_inactive_broker_are_not_fed(fake_instantly):
    gone = BrokerFactory(active=False)
    queued_leads(2, broker=gone, scores=[99, 98])
    kept = queued_leads(1, scores=[10])
    mv_refresh()

    result = campaign_feeder_run(business_date=MONDAY)

    assert result.data["fed"] == 1
    assert active_ids() == {kept[0].pk}
    assert fake_instantly.lead_adds_received() == times_each([kept[0].pk], 1)


@pytest.mark.django_db
def test_an_offboarded_brokers_leads_are_fed_under_the_new_broker_and_a_deactivated_brokers_never(fake_instantly):
    leaving, taking, deactivated = BrokerFactory(), BrokerFactory(), BrokerFactory()
    handed_over = queued_leads(2, broker=leaving, scores=[90, 89])
    left_behind = queued_leads(2, broker=deactivated, scores=[99, 98])
    with service_context():
        broker_offboard(broker=leaving, to_broker=taking, reason="left the company")
    mv_refresh()
    # Deactivated after the morning's refresh: the view still holds its leads, the feeder's live check does not.
    with service_context():
        Broker.objects.filter(pk=deactivated.pk).update(active=False)

    result = campaign_feeder_run(business_date=MONDAY)

    assert result.data["fed"] == 2 and result.data["ready"] == 4
    assert active_ids() == {lead.pk for lead in handed_over}
    with service_context():
        assert set(Lead.objects.filter(pk__in=active_ids()).values_list("assigned_broker_id", flat=True)) == {
            taking.pk
        }
    # At the next refresh the view itself drops the inactive broker's leads (leads migration 0018).
    mv_refresh()
    with service_context(), connection.cursor() as cursor:
        cursor.execute("SELECT id FROM mv_contactable_leads WHERE assigned_broker_id = %s", [deactivated.pk])
        assert cursor.fetchall() == []
        cursor.execute("SELECT count(*) FROM mv_contactable_leads WHERE id = ANY(%s)", [[x.pk for x in handed_over]])
        assert cursor.fetchone()[0] == 2
    assert {lead.pk for lead in left_behind}.isdisjoint(active_ids())


@pytest.mark.django_db
def test_an_api_key_without_a_campaign_is_a_recorded_failure_that_changes_nothing(fake_instantly, settings):
    settings.INSTANTLY_CAMPAIGN_ID = ""
    queued_leads(2)
    mv_refresh()

    result = campaign_feeder_run(business_date=MONDAY)

    assert result.status == "failure" and "INSTANTLY_CAMPAIGN_ID is not set" in result.message
    assert active_ids() == set()
    assert fake_instantly.requests == []
    with service_context():
        assert not FeederRun.objects.exists()  # the day can be fed once the setting is fixed
    assert events("feeder_run")[-1].status == "failure"


@pytest.mark.django_db(transaction=True)
def test_the_ledger_alone_keeps_two_concurrent_feeds_to_one(fake_instantly, settings):
    # Without the job lock (e.g. two clusters on different code versions): the second INSERT into
    # feeder_runs waits for the first transaction, then finds the day taken.
    from pipeline.campaigns.feeder import campaign_feed
    from pipeline.jobs import JobSkipped

    settings.FEEDER_DAILY_LIMIT = 50
    queued_leads(120)
    mv_refresh()
    reports = []

    def feed():
        try:
            with service_context():
                reports.append(campaign_feed(business_date=MONDAY).data)
        except JobSkipped as skip:
            reports.append(skip.data)
        finally:
            connection.close()

    # A lock on the ledger holds both feeds at their INSERT, so that both then claim the day side by side.
    with second_connection(admin=True, autocommit=False) as holder:
        holder.execute("LOCK TABLE feeder_runs IN EXCLUSIVE MODE")
        threads = [threading.Thread(target=feed) for _ in range(2)]
        for thread in threads:
            thread.start()
        wait_for(lambda: len(blocked_by(holder.info.backend_pid)) == 2, message="both feeds waiting on the ledger")
        holder.rollback()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(report["fed"] for report in reports) == [0, 50]
    assert any(report.get("already_fed") for report in reports)
    assert len(active_ids()) == 50
    fake_instantly.wait_answered()
    assert len(fake_instantly.requests) == 1
    assert fake_instantly.lead_adds_received() == times_each(active_ids(), 1)
    assert fake_instantly.created_count(CAMPAIGN_ID) == times_each(active_ids(), 1)
    with service_context():
        Lead.objects.all().delete()
    mv_refresh()


@pytest.mark.django_db
def test_a_share_of_the_feed_is_drawn_at_random_and_recorded_as_exploration(fake_instantly, settings):
    settings.FEEDER_DAILY_LIMIT = 100
    settings.FEEDER_EXPLORATION_SHARE = 0.2
    leads = queued_leads(600, scores=[(i * 37) % 101 for i in range(600)])
    mv_refresh()

    result = campaign_feeder_run(business_date=MONDAY)

    fed = active_ids()
    assert result.data["fed"] == 100 and result.data["explored"] == 20
    added = events("campaign_added")
    assert len(added) == 100 and all("exploration" in event.event_data for event in added)
    explored = {event.lead_id for event in added if event.event_data["exploration"]}
    assert len(explored) == 20 and explored <= fed
    with service_context():
        assert FeederRun.objects.get(business_date=MONDAY).leads_explored == 20
    # The other 80 are the best scores; the 20 are drawn from all the candidates, not from the best.
    scores = {lead.pk: lead.lead_score for lead in leads}
    ranked = fed - explored
    assert min(scores[i] for i in ranked) >= max(scores[i] for i in set(scores) - fed)
    assert min(scores[i] for i in explored) < min(scores[i] for i in ranked)


@pytest.mark.django_db
def test_no_exploration_when_the_share_is_zero(fake_instantly, settings):
    settings.FEEDER_DAILY_LIMIT = 50
    settings.FEEDER_EXPLORATION_SHARE = 0
    queued_leads(120)
    mv_refresh()

    result = campaign_feeder_run(business_date=MONDAY)

    assert result.data["fed"] == 50 and result.data["explored"] == 0
    assert not any(event.event_data["exploration"] for event in events("campaign_added"))
