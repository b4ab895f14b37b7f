"""A feed or dry run short of the limit says why (pipeline/campaigns/shortfall.py), dry runs leave a marked
ledger row, and `make run`'s demo data fed after its view refresh gives the first dry run its 250."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from django.core.management import call_command

from equity_connect.db import service_context
from leads.models import Lead
from pipeline.campaigns.feeder import campaign_feeder_run
from pipeline.models import FeederRun
from tests.pipeline import jobs_support
from tests.pipeline.jobs_support import mv_refresh, queued_leads

fake_instantly = jobs_support.fake_instantly

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]
MONDAY = dt.date(2026, 1, 5)


def test_a_dry_run_on_an_unrefreshed_view_says_why_and_is_recorded(settings, admin_client):
    settings.INSTANTLY_API_KEY = ""
    settings.FEEDER_DAILY_LIMIT = 250
    queued_leads(4)  # feedable now, but the view has not seen them
    texts_only = queued_leads(3)
    with service_context():  # consented to texts, not to e-mail
        Lead.objects.filter(pk__in=[lead.pk for lead in texts_only]).update(consent_email=False, consent_sms=True)

    result = campaign_feeder_run(business_date=MONDAY)

    assert "would feed 0 leads" in result.message
    assert "0 of 250: mv_contactable_leads has never been refreshed and offers 0 queued leads never fed" in (
        result.message
    )
    assert "live leads: 7 queued, 4 with consent to e-mail, 4 with a verified e-mail" in result.message
    assert "4 feedable leads are newer than the view: refresh it" in result.message
    assert result.data["shortfall"]["funnel"] == {
        "queued": 7,
        "consented": 4,
        "verified": 4,
        "assigned": 4,
        "never_fed": 4,
        "not_suppressed": 4,
    }
    with service_context():
        (dry,) = FeederRun.objects.filter(dry_run=True)
    assert "refresh it" in dry.error_message
    # The admin's "dry run" filter finds it (it was always empty before: dry runs left no row).
    page = admin_client.get("/admin/pipeline/feederrun/?dry_run__exact=1")
    assert page.status_code == 200 and "1 feeder run" in page.content.decode().lower()

    mv_refresh()
    again = campaign_feeder_run(business_date=MONDAY)
    assert "would feed 4 leads" in again.message
    assert "most leads drop out at: with consent to e-mail" in again.message
    assert "refresh it" not in again.message


def test_a_real_run_that_feeds_the_limit_says_nothing_more(settings, fake_instantly):
    settings.FEEDER_DAILY_LIMIT = 3
    queued_leads(5)
    mv_refresh()
    result = campaign_feeder_run(business_date=MONDAY)
    assert result.data["fed"] == 3 and "shortfall" not in result.data and "Short:" not in result.message


def test_a_short_real_run_keeps_the_reason_on_its_ledger_row(settings, fake_instantly):
    settings.FEEDER_DAILY_LIMIT = 10
    queued_leads(2)
    call_command("refresh_contactable_leads")  # the job, with its `mv_refreshed` event
    result = campaign_feeder_run(business_date=MONDAY)
    assert result.data["fed"] == 2 and result.data["shortfall"]["view_offers"] == 2
    with service_context():
        run = FeederRun.objects.get(business_date=MONDAY, dry_run=False)
    assert run.error_message.startswith(
        "short: 2 of 10: mv_contactable_leads was refreshed 0 min ago and offers 2 queued leads never fed; "
        "live leads: 2 queued, 2 with consent to e-mail"
    )


def _make_run_commands() -> list[list[str]]:
    """The `manage.py` commands of the Makefile's `run` recipe, in order, before the server starts."""
    recipe = re.search(r"^run: .*\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(), flags=re.M).group(1)
    return [line.split("manage.py ", 1)[1].split() for line in recipe.splitlines() if "manage.py " in line]


@pytest.mark.slow  # 3,000 demo leads
def test_make_runs_demo_data_gives_the_first_dry_run_its_250(settings):
    settings.INSTANTLY_API_KEY = ""
    commands = _make_run_commands()
    assert [c[0] for c in commands] == ["seed_demo", "refresh_contactable_leads", "sync_schedules"]
    for name, *args in commands:
        if name != "sync_schedules":
            call_command(name, *args)
    result = campaign_feeder_run(business_date=MONDAY)
    assert "DRY RUN (INSTANTLY_API_KEY is not set): would feed 250 leads" in result.message
    assert "Short" not in result.message
    with service_context():
        assert Lead.objects.feedable().count() >= 250
