"""Experiments: the statistics against hand-computed values, the stable assignment of leads to variants, the
feeder's split of the daily limit across variants (and with SMS), stop -> the winner, and the admin page."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter

import pytest

from equity_connect.db import service_context
from equity_connect.events import record_event
from pipeline.campaigns.feeder import campaign_feeder_run
from pipeline.experiments.routing import variant_for
from pipeline.experiments.selectors import experiment_results
from pipeline.experiments.services import ExperimentError, experiment_archive, experiment_start, experiment_stop
from pipeline.experiments.statistics import comparison_judged, two_proportion_test, wilson_interval
from pipeline.models import Experiment, ExperimentAssignment, ExperimentVariant
from pipeline.sms.feed import sms_feeder_run
from tests.factories import StaffUserFactory
from tests.pipeline import jobs_support, sms_support
from tests.pipeline.jobs_support import CAMPAIGN_ID, mv_refresh, queued_leads
from tests.pipeline.sms_support import sms_lead

fake_instantly = jobs_support.fake_instantly
fake_twilio = sms_support.fake_twilio

MONDAY = dt.date(2026, 1, 5)
MONDAY_MORNING_LA = dt.datetime(2026, 1, 5, 17, 0, tzinfo=dt.UTC)
CAMPAIGN_A = "campaign-a-0001"
CAMPAIGN_B = "campaign-b-0002"


# --- statistics against hand computation ----------------------------------------------------------------------


def test_wilson_interval_of_10_in_100():
    # p = 0.1, n = 100, z = 1.959964, z^2 = 3.841459
    # denominator = 1 + z^2/n = 1.0384146
    # centre = (p + z^2/(2n)) / denominator = (0.1 + 0.0192073) / 1.0384146 = 0.1147974
    # half = z * sqrt(p(1-p)/n + z^2/(4n^2)) / denominator
    #      = 1.959964 * sqrt(0.0009 + 0.0000960365) / 1.0384146 = 1.959964 * 0.0315600 / 1.0384146 = 0.0595683
    # interval = (0.1147974 - 0.0595683, 0.1147974 + 0.0595683) = (0.0552291, 0.1743657)
    interval = wilson_interval(10, 100)
    assert interval.rate == pytest.approx(0.1)
    assert interval.low == pytest.approx(0.0552291, abs=1e-6)
    assert interval.high == pytest.approx(0.1743657, abs=1e-6)


def test_wilson_interval_of_0_in_20_is_not_the_empty_interval():
    # p = 0: half = z * sqrt(z^2/(4n^2)) / d = (z^2/(2n)) / d = centre, so the interval is [0, 2 * centre]
    # centre = (3.841459 / 40) / (1 + 3.841459 / 20) = 0.0960365 / 1.1920729 = 0.0805626 -> high = 0.1611251
    interval = wilson_interval(0, 20)
    assert interval.low == pytest.approx(0.0, abs=1e-12)
    assert interval.high == pytest.approx(0.1611251, abs=1e-6)
    assert wilson_interval(0, 0).high == 1.0  # no trials: nothing known


def test_two_proportion_test_of_30_in_200_against_50_in_200():
    # p1 = 0.15, p2 = 0.25, pooled = 80/400 = 0.2
    # se = sqrt(0.2 * 0.8 * (1/200 + 1/200)) = sqrt(0.16 * 0.01) = 0.04
    # z = (0.15 - 0.25) / 0.04 = -2.5; two-sided p = erfc(2.5 / sqrt 2) = 2 * (1 - Phi(2.5)) = 0.0124193
    result = two_proportion_test(30, 200, 50, 200)
    assert result.z == pytest.approx(-2.5)
    assert result.p_value == pytest.approx(0.0124193, abs=1e-6)
    assert two_proportion_test(0, 10, 0, 10).p_value == 1.0  # nothing to tell apart


def test_the_difference_is_judged_only_at_the_fixed_sample_size():
    early = comparison_judged(x=30, n=200, control_x=50, control_n=200, sample_size=500)
    assert not early.judged and not early.significant and early.text == "not judged yet: 200 of 500"
    at_size = comparison_judged(x=30, n=200, control_x=50, control_n=200, sample_size=200)
    assert at_size.judged and at_size.significant and "significantly lower" in at_size.text
    # Four variants against one control: each at 5% / 4 = 0.0125 -> p 0.0124193 still below;
    # six: 5% / 6 = 0.00833 -> not significant.
    assert comparison_judged(x=30, n=200, control_x=50, control_n=200, sample_size=200, comparisons=4).significant
    assert not comparison_judged(x=30, n=200, control_x=50, control_n=200, sample_size=200, comparisons=6).significant


# --- assignment -------------------------------------------------------------------------------------------------


def test_a_lead_always_lands_in_the_same_variant_and_the_split_follows_the_weights():
    variants = [ExperimentVariant(id=7, name="A", weight=1), ExperimentVariant(id=9, name="B", weight=3)]
    leads = [uuid.UUID(int=n * 7919 + 13) for n in range(4000)]
    first = [variant_for(experiment_id=3, lead_id=lead, variants=variants).name for lead in leads]
    again = [variant_for(experiment_id=3, lead_id=lead, variants=list(reversed(variants))).name for lead in leads]
    assert first == again  # stable, whatever order the variants come in
    shares = Counter(first)
    assert 0.22 < shares["A"] / len(leads) < 0.28  # weight 1 of 4
    # Another experiment draws afresh (its own hash), not the same split.
    other = [variant_for(experiment_id=4, lead_id=lead, variants=variants).name for lead in leads]
    assert other != first
    # Hand-checked: sha256("3:<lead>") read as a 64-bit number mod 4 is 0 -> A, else B.
    import hashlib

    for lead, name in zip(leads[:50], first[:50], strict=True):
        point = int.from_bytes(hashlib.sha256(f"3:{lead}".encode()).digest()[:8], "big") % 4
        assert name == ("A" if point < 1 else "B")


# --- the feeder -------------------------------------------------------------------------------------------------


def running_experiment(sample_size: int = 100) -> Experiment:
    with service_context():
        experiment = Experiment.objects.create(name=f"subject test {uuid.uuid4().hex[:6]}", sample_size=sample_size)
        ExperimentVariant.objects.create(experiment=experiment, name="A", weight=1, instantly_campaign_id=CAMPAIGN_A)
        ExperimentVariant.objects.create(experiment=experiment, name="B", weight=1, instantly_campaign_id=CAMPAIGN_B)
        return experiment_start(experiment=experiment)


@pytest.mark.django_db
def test_the_feeder_splits_the_daily_limit_across_variants_and_records_each_assignment(fake_instantly, settings):
    settings.FEEDER_DAILY_LIMIT = 20
    experiment = running_experiment()
    queued_leads(60)
    mv_refresh()

    result = campaign_feeder_run(business_date=MONDAY)

    assert result.status == "success" and result.data["fed"] == 20
    in_a, in_b = fake_instantly.created_emails(CAMPAIGN_A), fake_instantly.created_emails(CAMPAIGN_B)
    assert len(in_a) + len(in_b) == 20 and in_a and in_b  # the limit is the day's, across variants
    assert fake_instantly.created_emails(CAMPAIGN_ID) == []
    with service_context():
        assignments = list(
            ExperimentAssignment.objects.filter(experiment=experiment).select_related("variant", "lead")
        )
        assert len(assignments) == 20
        variants = list(experiment.variants.all())
        for assignment in assignments:
            assert assignment.variant == variant_for(
                experiment_id=experiment.id, lead_id=assignment.lead_id, variants=variants
            )
            campaign = CAMPAIGN_A if assignment.variant.name == "A" else CAMPAIGN_B
            assert assignment.lead.email.lower() in fake_instantly.created_emails(campaign)
            assert assignment.channel == "email"


@pytest.mark.django_db
def test_variants_and_sms_share_one_daily_limit(fake_instantly, fake_twilio, settings):
    settings.FEEDER_DAILY_LIMIT = 10
    settings.FEEDER_SMS_DAILY_LIMIT = None
    running_experiment()
    for n in range(4):
        sms_lead(phone=f"+1415555030{n}")
    queued_leads(30)
    mv_refresh()

    texts = sms_feeder_run(now=MONDAY_MORNING_LA)
    emails = campaign_feeder_run(business_date=MONDAY)

    assert texts.data["texted"] == 4
    assert emails.data["fed"] == 6
    assert len(fake_instantly.created_emails(CAMPAIGN_A)) + len(fake_instantly.created_emails(CAMPAIGN_B)) == 6


@pytest.mark.django_db
def test_stop_sends_every_new_lead_to_the_winner_and_archive_to_the_default(fake_instantly, settings):
    settings.FEEDER_DAILY_LIMIT = 6
    experiment = running_experiment()
    queued_leads(30)
    mv_refresh()
    campaign_feeder_run(business_date=MONDAY)
    with service_context():
        winner = experiment.variants.get(name="B")
        with pytest.raises(ExperimentError):
            experiment_stop(
                experiment=experiment,
                winner=ExperimentVariant.objects.create(
                    experiment=Experiment.objects.create(name="other", sample_size=5),
                    name="X",
                    instantly_campaign_id="x",
                ),
            )
        experiment_stop(experiment=experiment, winner=winner)
    before_a = len(fake_instantly.created_emails(CAMPAIGN_A))

    campaign_feeder_run(business_date=MONDAY + dt.timedelta(days=1))
    assert len(fake_instantly.created_emails(CAMPAIGN_A)) == before_a  # nothing new to the loser
    with service_context():
        experiment_archive(experiment=experiment)
    campaign_feeder_run(business_date=MONDAY + dt.timedelta(days=2))
    assert len(fake_instantly.created_emails(CAMPAIGN_ID)) == 6
    assert len(fake_instantly.created_emails(CAMPAIGN_A)) + len(fake_instantly.created_emails(CAMPAIGN_B)) == 12


@pytest.mark.django_db
def test_start_refuses_a_draft_that_cannot_run():
    with service_context():
        lone = Experiment.objects.create(name="lone", sample_size=10)
        ExperimentVariant.objects.create(experiment=lone, name="A", instantly_campaign_id="c1")
        with pytest.raises(ExperimentError, match="two variants"):
            experiment_start(experiment=lone)
        ExperimentVariant.objects.create(experiment=lone, name="B", instantly_campaign_id="c1")
        with pytest.raises(ExperimentError, match="its own Instantly campaign"):
            experiment_start(experiment=lone)
    running_experiment()
    with service_context():
        ExperimentVariant.objects.filter(experiment=lone, name="B").update(instantly_campaign_id="c2")
        with pytest.raises(ExperimentError, match="another experiment is running"):
            experiment_start(experiment=lone)


@pytest.mark.django_db
def test_figures_per_variant_count_outcomes_after_the_feed(fake_instantly, settings):
    settings.FEEDER_DAILY_LIMIT = 40
    experiment = running_experiment(sample_size=5)
    queued_leads(40)
    mv_refresh()
    campaign_feeder_run(business_date=MONDAY)
    with service_context():
        by_variant: dict[str, list] = {"A": [], "B": []}
        for assignment in ExperimentAssignment.objects.filter(experiment=experiment).select_related("variant"):
            by_variant[assignment.variant.name].append(assignment.lead_id)
        # A: 2 replies, 1 of them booked; B: 1 reply, 1 unsubscribe by text.
        record_event("email_replied", lead_id=by_variant["A"][0])
        record_event("sms_replied", lead_id=by_variant["A"][1])
        record_event("appointment_booked", lead_id=by_variant["A"][1])
        record_event("email_replied", lead_id=by_variant["B"][0])
        record_event("sms_opted_out", lead_id=by_variant["B"][1])
        figures = {figure.name: figure for figure in experiment_results(experiment=experiment)}
    a, b = figures["A"], figures["B"]
    assert a.fed == len(by_variant["A"]) and b.fed == len(by_variant["B"]) and a.fed + b.fed == 40
    assert (a.replied, a.booked, a.unsubscribed) == (2, 1, 0)
    assert (b.replied, b.booked, b.unsubscribed) == (1, 0, 1)
    assert a.reply_rate == wilson_interval(2, a.fed)
    assert a.control and a.judgement is None
    assert b.judgement.judged  # both reached the sample size of 5
    assert b.judgement.p_value == pytest.approx(two_proportion_test(1, b.fed, 2, a.fed).p_value)


@pytest.mark.django_db
def test_the_admin_page_shows_the_figures_and_stops_with_the_chosen_winner(client, fake_instantly):
    experiment = running_experiment(sample_size=5)
    client.force_login(StaffUserFactory())
    page = client.get(f"/admin/pipeline/experiment/{experiment.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "reply rate (95% Wilson)" in html and "Stop: all new leads to B" in html
    with service_context():
        winner = experiment.variants.get(name="B")
    response = client.post(f"/admin/pipeline/experiment/{experiment.pk}/stop/{winner.pk}/")
    assert response.status_code == 302
    with service_context():
        stopped = Experiment.objects.get(pk=experiment.pk)
        assert stopped.status == "stopped" and stopped.winner_id == winner.pk
    assert client.get(f"/admin/pipeline/experiment/{experiment.pk}/stop/{winner.pk}/").status_code == 405


@pytest.mark.django_db
def test_the_ops_dashboard_shows_each_running_experiment_per_variant(fake_instantly, settings):
    from django.test import Client

    settings.FEEDER_DAILY_LIMIT = 20
    experiment = running_experiment(sample_size=50)
    queued_leads(20)
    mv_refresh()
    campaign_feeder_run(business_date=MONDAY)
    with service_context():
        lead_id = ExperimentAssignment.objects.filter(experiment=experiment, variant__name="A").first().lead_id
        record_event("email_replied", lead_id=lead_id)
        figures = {figure.name: figure for figure in experiment_results(experiment=experiment)}
    client = Client()
    client.force_login(StaffUserFactory())
    page = client.get("/admin/dashboard/").content.decode()
    assert 'id="experiments"' in page and f"/admin/pipeline/experiment/{experiment.pk}/change/" in page
    a = figures["A"]
    assert f'<td>A</td><td class="num">{a.fed}</td><td class="num">1</td>' in page
    assert figures["B"].judgement.text in page  # not judged before the sample size: it says so
