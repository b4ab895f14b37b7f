"""Dead-man's switches: each fires when what should have happened did not, and resolves when it happens; and
when the scheduler is dead, /healthz evaluates them itself, so the alerts still go out (once per incident)."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
import requests
from django.utils import timezone

from equity_connect.db import service_context
from equity_connect.events import record_event
from pipeline.models import Alert, Upload
from pipeline.monitoring import health
from pipeline.monitoring.deadman import (
    check_feeder_dry_run,
    check_feeder_missed,
    check_feeder_short,
    check_mv_refresh_missing,
    check_uploads_stuck,
    installed_at,
)
from tests.factories import UploadFactory
from tests.fakes.receiver import WebhookReceiver
from tests.waiting import wait_for

LOS_ANGELES = zoneinfo.ZoneInfo("America/Los_Angeles")


def la(day: dt.date, hour: int, minute: int) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=LOS_ANGELES)


def next_weekday(weekday: int) -> dt.date:
    """The first such weekday (0 = Monday) at least two days from now: after this database was set up."""
    day = timezone.now().astimezone(LOS_ANGELES).date() + dt.timedelta(days=2)
    return day + dt.timedelta(days=(weekday - day.weekday()) % 7)


def check(rule, now):
    with service_context():
        return rule(now)


@pytest.mark.django_db
def test_no_mv_refresh_for_26_hours():
    now = timezone.now()
    with service_context():
        set_up = installed_at()
        record_event("mv_refreshed", data={"job": "refresh_contactable_leads"})
        record_event("mv_refreshed", status="failure", error_message="lock timeout")  # a failure is not a refresh

    assert not check(check_mv_refresh_missing, now + dt.timedelta(hours=25)).breached
    missing = check(check_mv_refresh_missing, now + dt.timedelta(hours=27))
    assert missing.breached and "limit 26 h" in missing.message
    assert not check(check_mv_refresh_missing, set_up + dt.timedelta(hours=1)).breached  # nothing due yet


@pytest.mark.django_db
def test_no_mv_refresh_ever_counts_from_the_database_set_up():
    with service_context():
        set_up = installed_at()
    assert not check(check_mv_refresh_missing, set_up + dt.timedelta(hours=25)).breached
    assert check(check_mv_refresh_missing, set_up + dt.timedelta(hours=27)).breached


@pytest.mark.django_db
def test_no_feeder_run_on_a_business_day_by_0630():
    tuesday, saturday = next_weekday(1), next_weekday(5)

    assert not check(check_feeder_missed, la(tuesday, 6, 29)).breached  # not due yet
    missed = check(check_feeder_missed, la(tuesday, 6, 31))
    assert missed.breached and f"{tuesday:%Y-%m-%d}" in missed.message
    assert not check(check_feeder_missed, la(saturday, 12, 0)).breached  # no feed on a weekend
    with service_context():
        record_event("feeder_run", data={"job": "campaign_feeder", "business_date": tuesday.isoformat()})
    assert not check(check_feeder_missed, la(tuesday, 6, 31)).breached


@pytest.mark.django_db
@pytest.mark.parametrize(("fed", "ready", "short"), [(120, 400, True), (120, 120, False), (250, 900, False)])
def test_a_day_fed_fewer_than_the_limit_while_enough_were_ready(fed, ready, short):
    with service_context():
        data = {"job": "campaign_feeder", "business_date": "2026-12-01", "limit": 250, "fed": fed, "ready": ready}
        record_event("feeder_run", data=data)

    observation = check(check_feeder_short, timezone.now())

    assert observation.breached is short
    assert f"fed {fed} of 250 leads for 2026-12-01 while {ready} were ready" in observation.message


@pytest.mark.django_db
def test_the_feeder_in_dry_run_mode_outside_debug(settings):
    settings.INSTANTLY_API_KEY, settings.DEBUG = "", False
    assert check(check_feeder_dry_run, timezone.now()).breached
    settings.DEBUG = True
    assert not check(check_feeder_dry_run, timezone.now()).breached
    settings.DEBUG, settings.INSTANTLY_API_KEY = False, "live-key"
    assert not check(check_feeder_dry_run, timezone.now()).breached


@pytest.mark.django_db
def test_uploads_not_done_after_n_minutes(settings):
    settings.UPLOAD_STUCK_MINUTES = 30
    old = timezone.now() - dt.timedelta(minutes=31)
    stuck = UploadFactory(status="processing")
    UploadFactory(status="received")  # 0 minutes old: not stuck
    UploadFactory(status="failed")
    with service_context():
        Upload.objects.filter(status__in=("processing", "failed")).update(created_at=old)

    observation = check(check_uploads_stuck, timezone.now())

    assert observation.breached and observation.value == 1
    assert f"the oldest is {stuck.pk}" in observation.message
    with service_context():
        Upload.objects.filter(pk=stuck.pk).update(status="done")
    assert not check(check_uploads_stuck, timezone.now()).breached


@pytest.mark.django_db
def test_healthz_reports_stuck_uploads_without_failing(client, settings):
    settings.UPLOAD_STUCK_MINUTES = 30
    UploadFactory(status="received")
    with service_context():
        Upload.objects.update(created_at=timezone.now() - dt.timedelta(hours=2))

    body = client.get("/healthz").json()

    assert body["uploads"] == {"ok": False, "stuck": 1, "older_than_minutes": 30}


@pytest.mark.django_db(transaction=True)
def test_with_the_scheduler_dead_healthz_evaluates_the_alerts_and_each_notifies_once(
    live_server, settings, monkeypatch
):
    monkeypatch.setattr(health, "_fallback_started_at", -3600.0)  # this process has not evaluated yet
    settings.ALERTS_FROM_HEALTHZ = True
    settings.INSTANTLY_API_KEY, settings.DEBUG = "", False  # dry-run mode: a switch that holds
    settings.UPLOAD_STUCK_MINUTES = 30
    UploadFactory(status="processing")
    with service_context():
        Upload.objects.update(created_at=timezone.now() - dt.timedelta(hours=1))
    with WebhookReceiver() as receiver:
        settings.ALERT_WEBHOOK_URL = receiver.url + "/alerts"

        first = requests.get(f"{live_server.url}/healthz", timeout=5)  # no scheduler heartbeat, no alerts job

        def notified():
            rules = sorted(call["body"]["rule"] for call in receiver.requests)
            return rules if {"feeder_dry_run", "uploads_stuck"} <= set(rules) else None

        rules = wait_for(notified, timeout=30, interval=0.1, message="the alerts evaluated from /healthz")
        wait_for(lambda: not health._fallback_running.locked(), timeout=30, message="the evaluation ended")
        monkeypatch.setattr(health, "_fallback_started_at", -3600.0)
        again = requests.get(f"{live_server.url}/healthz", timeout=5)  # the job ran now: not overdue
        calls_after = len(receiver.requests)

    assert first.status_code == 503 and first.json()["alerts"]["overdue"] is True
    assert first.json()["alerts"]["evaluating"] is True
    assert again.json()["alerts"]["overdue"] is False and "evaluating" not in again.json()["alerts"]
    assert rules.count("feeder_dry_run") == 1 and rules.count("uploads_stuck") == 1
    assert calls_after == len(rules)  # nothing notified twice
    with service_context():
        assert set(Alert.objects.filter(state="firing").values_list("rule", flat=True)) >= {
            "feeder_dry_run",
            "uploads_stuck",
        }
