"""The learned score: promotion and refusal on synthetic outcomes, the explanation, the switch in the admin, the
portal's explanation, the nightly job."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from equity_connect.db import service_context
from equity_connect.models import PipelineEvent
from leads.learned.features import Featurizer
from leads.learned.services import TrainingOutcome, score_model_train
from leads.learned.training import decide, explanation_text, precision_at
from leads.models import Lead, ScoreModelVersion
from pipeline.campaigns.learning import score_model_training_run
from tests.factories import BrokerFactory, LeadFactory, RoleUserFactory, StaffUserFactory

pytestmark = pytest.mark.django_db

PARTNER = "Referral Partner"

# Fed leads, one an hour from 400 days ago (so every one is past the sequence's end), and what became of them.
# Features are drawn at random; `signal` plants one the rule score does not know: leads from PARTNER reply
# far more often. Without it, every lead replies with the same chance (higher, so the holdout's figures are steady).
SYNTHETIC_SQL = """
WITH synth AS MATERIALIZED (
  SELECT g, gen_random_uuid() AS id, random() < 0.3 AS referral,
         (ARRAY['CA', 'TX', 'FL', 'NY', 'AZ', 'OH'])[1 + floor(random() * 6)::int] AS state,
         62 + floor(random() * 30)::int AS age, round((random() * 900000)::numeric, 2) AS equity,
         round((300000 + random() * 900000)::numeric, 2) AS value, random() < 0.7 AS owner,
         (ARRAY['Single Family', 'Condo', 'Duplex'])[1 + floor(random() * 3)::int] AS ptype,
         random() AS u, %(start)s::timestamptz + g * interval '1 hour' AS fed_at
    FROM generate_series(1, %(n)s) AS g
), leads_in AS (
  INSERT INTO leads (id, first_name, property_state, age, estimated_equity, property_value, owner_occupied,
                     property_type, email_verified, source, campaign_status)
  SELECT id, 'Synth' || g, state, age, equity, value, owner, ptype, true,
         CASE WHEN referral THEN %(partner)s ELSE 'Other Source' END, 'active'
    FROM synth
), fed AS (
  INSERT INTO pipeline_events (event_type, lead_id, event_data, created_at)
  SELECT 'campaign_added', id, jsonb_build_object('exploration', g %% 10 = 0), fed_at FROM synth
)
INSERT INTO pipeline_events (event_type, lead_id, created_at)
SELECT CASE WHEN u < 0.03 THEN 'unsubscribed' ELSE 'email_replied' END, id, fed_at + interval '2 days'
  FROM synth
 WHERE u < 0.03 OR u < CASE WHEN %(signal)s AND referral THEN 0.55 WHEN %(signal)s THEN 0.08 ELSE 0.25 END
"""


def synthetic_outcomes(n: int, *, signal: bool, seed: float = 0.25) -> None:
    with service_context(budget="job"), connection.cursor() as cursor:
        cursor.execute("SELECT setseed(%s)", [seed])
        cursor.execute(
            SYNTHETIC_SQL,
            {"n": n, "signal": signal, "partner": PARTNER, "start": timezone.now() - dt.timedelta(days=400)},
        )


def candidates(broker, **fields) -> list[Lead]:
    """Queued, contactable, never-fed leads the active model scores: one from PARTNER, one from elsewhere."""
    shared = {"contactable": True, "assigned_broker": broker, "estimated_equity": 400000, "property_state": "CA"}
    return [
        LeadFactory(source=PARTNER, first_name="Fromthe", last_name="Partner", **shared, **fields),
        LeadFactory(source="Other Source", first_name="Fromelse", last_name="Where", **shared, **fields),
    ]


def reload(lead) -> Lead:
    with service_context():
        return Lead.objects.get(pk=lead.pk)


def train() -> TrainingOutcome:
    with service_context(budget="job"):  # as the nightly job runs it
        return score_model_train()


def active_version() -> ScoreModelVersion | None:
    with service_context():
        return ScoreModelVersion.objects.filter(active=True).first()


# --- promotion and refusal ----------------------------------------------------------------------------------


def test_a_planted_signal_is_found_and_the_model_is_promoted_and_scores_the_candidates(settings):
    settings.FEEDER_DAILY_LIMIT = 250
    synthetic_outcomes(2500, signal=True)
    broker = BrokerFactory()
    partner_lead, other_lead = candidates(broker)

    result = score_model_training_run()

    assert result.status == "success", result.message
    version = active_version()
    assert version is not None and version.promoted and result.data["promoted"] is True
    model, rule = version.metrics["model"], version.metrics["rule"]
    assert model["auc"] >= rule["auc"] + 0.02 and model["auc"] > 0.7
    assert model["precision_at_limit"] >= rule["precision_at_limit"]
    assert version.n_outcomes == 2500 and version.n_train + version.n_holdout == 2500
    assert set(version.metrics["candidates"]) == {"logistic_regression", "hist_gradient_boosting"}
    assert version.metrics["explored"] == 250  # one in ten fed leads came from the exploration draw
    # The candidates were scored by it: which version, the chance, the words; the partner's lead ranks first.
    partner_lead, other_lead = reload(partner_lead), reload(other_lead)
    for lead in (partner_lead, other_lead):
        assert lead.score_breakdown["model_version"] == version.pk
        assert lead.score_breakdown["total"] == lead.lead_score
    assert partner_lead.lead_score > other_lead.lead_score
    assert partner_lead.score_breakdown["probability"] > 0.3 > other_lead.score_breakdown["probability"]
    assert partner_lead.score_breakdown["explanation"].startswith(f"From {PARTNER} (+)")
    assert "from other source (-)" in other_lead.score_breakdown["explanation"].lower()
    # The job's event says what happened.
    with service_context():
        event = PipelineEvent.objects.filter(event_type="job_run", event_data__job="score_model_train").get()
    assert event.event_data["version"] == version.pk and event.event_data["scored"] == 2


def test_a_model_without_signal_is_stored_but_not_promoted(settings):
    synthetic_outcomes(5000, signal=False, seed=0.6)
    broker = BrokerFactory()
    partner_lead, _ = candidates(broker)
    rule_breakdown = reload(partner_lead).score_breakdown

    outcome = train()

    assert outcome.version_id is not None and not outcome.promoted
    assert active_version() is None
    with service_context():
        version = ScoreModelVersion.objects.get(pk=outcome.version_id)
    assert not version.promoted and not version.active
    # Noise may clear the 0.02 bar on one holdout (it did here); it does not hold across resamples of it.
    assert "not 0.02 or more higher" in version.decision or "the AUC gain is not steady" in version.decision
    assert version.metrics["model"]["auc_gain_lower_bound"] <= 0
    assert reload(partner_lead).score_breakdown == rule_breakdown  # the rule score stays


def test_fewer_outcomes_than_the_minimum_are_not_promoted_even_with_a_signal(settings):
    settings.SCORE_MODEL_MIN_OUTCOMES = 2000
    synthetic_outcomes(900, signal=True)

    outcome = train()

    assert not outcome.promoted and active_version() is None
    with service_context():
        version = ScoreModelVersion.objects.get(pk=outcome.version_id)
    assert "trained on 900 outcomes; at least 2,000 are needed" in version.decision
    # With the bar lowered, the same data is promoted: it was the count that held it back.
    settings.SCORE_MODEL_MIN_OUTCOMES = 500
    assert train().promoted


def test_leads_fed_recently_without_an_answer_are_left_out(settings):
    settings.SCORE_MODEL_SEQUENCE_DAYS = 30
    synthetic_outcomes(300, signal=True)
    with service_context(), connection.cursor() as cursor:
        # 100 more fed yesterday, none answered yet: their outcome is unknown.
        cursor.execute(
            "INSERT INTO pipeline_events (event_type, lead_id, created_at)"
            " SELECT 'campaign_added', gen_random_uuid(), now() - interval '1 day' FROM generate_series(1, 100)"
        )
    assert train().n_outcomes == 300


def test_nothing_to_train_on_is_reported_not_raised():
    outcome = train()
    assert outcome.version_id is None and "no model trained" in outcome.message


# --- the figures and the decision, by hand ------------------------------------------------------------------


def test_precision_at_the_limit_shares_out_ties():
    scores = np.array([9, 8, 8, 8, 1], dtype=float)
    labels = np.array([1, 1, 0, 0, 1], dtype=float)
    assert precision_at(scores, labels, 1) == 1.0
    # Top 3: the 9 (a positive) and two of the three 8s (one positive among them): (1 + 1 * 2/3) / 3.
    assert precision_at(scores, labels, 3) == pytest.approx((1 + 2 / 3) / 3)
    assert precision_at(scores, labels, 10) == pytest.approx(3 / 5)


@pytest.mark.parametrize(
    ("model", "rule", "outcomes", "promoted"),
    [
        ({"auc": 0.72, "precision_at_limit": 0.30}, {"auc": 0.70, "precision_at_limit": 0.30}, 2000, True),
        ({"auc": 0.71, "precision_at_limit": 0.30}, {"auc": 0.70, "precision_at_limit": 0.30}, 5000, False),
        ({"auc": 0.80, "precision_at_limit": 0.29}, {"auc": 0.70, "precision_at_limit": 0.30}, 5000, False),
        ({"auc": 0.80, "precision_at_limit": 0.40}, {"auc": 0.70, "precision_at_limit": 0.30}, 1999, False),
        ({"auc": None, "precision_at_limit": 0.40}, {"auc": None, "precision_at_limit": 0.30}, 5000, False),
    ],
)
def test_the_promotion_bar(model, rule, outcomes, promoted):
    assert (
        decide(model=model, rule=rule, n_outcomes=outcomes, min_outcomes=2000, min_auc_gain=0.02).promoted is promoted
    )


# --- explanation ------------------------------------------------------------------------------------------


def test_the_explanation_in_words():
    contributions = [
        {"feature": "equity", "words": "high equity", "effect": 0.8},
        {"feature": "owner_occupied", "words": "owner occupied", "effect": 0.3},
        {"feature": "state", "words": "in TX", "effect": -0.2},
    ]
    assert explanation_text(contributions) == "High equity (+), owner occupied (+), in TX (-)"
    assert explanation_text([]) == "No single feature stands out."


@pytest.mark.parametrize(
    ("group", "row", "words"),
    [
        ("equity", (70, 500000, 400000, True, "single_family", True, False, "TX", "Acme"), "high equity"),
        ("equity", (70, 1000, 400000, True, "single_family", True, False, "TX", "Acme"), "low equity"),
        ("equity", (70, None, 400000, True, "single_family", True, False, "TX", "Acme"), "equity unknown"),
        ("owner_occupied", (70, 1, 1, True, "single_family", True, False, "TX", "Acme"), "owner occupied"),
        ("owner_occupied", (70, 1, 1, None, "single_family", True, False, "TX", "Acme"), "occupancy unknown"),
        ("age", (78, 1, 1, True, "single_family", True, False, "TX", "Acme"), "age 78"),
        ("property_type", (78, 1, 1, True, "condo_townhouse", True, False, "TX", "Acme"), "condo or townhouse"),
        ("verification", (78, 1, 1, True, "other", True, True, "TX", "Acme"), "verified e-mail and phone"),
        ("verification", (78, 1, 1, True, "other", False, False, "TX", "Acme"), "no verified contact"),
        ("state", (78, 1, 1, True, "other", False, False, "TX", "Acme"), "in TX"),
        ("partner", (78, 1, 1, True, "other", False, False, "TX", "Acme"), "from Acme"),
    ],
)
def test_feature_words(group, row, words):
    featurizer = Featurizer(equity_median=100000.0)
    assert featurizer.words(group, row) == words


# --- the switch in the admin, and the portal --------------------------------------------------------------


def test_the_admin_shows_the_versions_and_switches_back_to_the_rule_score_and_to_a_version(client, settings):
    synthetic_outcomes(2500, signal=True)
    broker = BrokerFactory()
    partner_lead, _ = candidates(broker)
    promoted = train()
    assert promoted.promoted
    rule_version_breakdown = {"version": 1}

    client.force_login(StaffUserFactory())
    page = client.get(reverse("admin:leads_scoremodelversion_changelist"))
    assert page.status_code == 200
    html = page.content.decode()
    assert "rule score auc" in html.lower() and "precision at the daily limit" in html.lower()
    assert f"{promoted.metrics['model']['auc']:.3f}" in html and f"{promoted.metrics['rule']['auc']:.3f}" in html
    assert 'id="activate-rule-score"' in html
    assert f"Ranking the leads now: <strong>score model v{promoted.version_id}" in html

    response = client.post(reverse("admin:leads_scoremodelversion_rule_score"), follow=True)
    assert response.status_code == 200 and "The rule score ranks the leads again" in response.content.decode()
    assert active_version() is None
    restored = reload(partner_lead).score_breakdown
    assert "model_version" not in restored and restored["version"] == rule_version_breakdown["version"]
    with service_context():
        assert PipelineEvent.objects.filter(event_type="rule_score_activated").count() == 1

    response = client.post(
        reverse("admin:leads_scoremodelversion_changelist"),
        {"action": "activate_version", "_selected_action": [promoted.version_id]},
        follow=True,
    )
    assert f"Version {promoted.version_id} ranks the leads now" in response.content.decode()
    assert active_version().pk == promoted.version_id
    assert reload(partner_lead).score_breakdown["model_version"] == promoted.version_id
    with service_context():
        assert PipelineEvent.objects.filter(event_type="score_model_activated").count() == 1


def test_ops_may_look_at_the_versions_but_not_switch(client):
    synthetic_outcomes(2500, signal=True)
    assert train().promoted
    client.force_login(RoleUserFactory(role="ops"))
    page = client.get(reverse("admin:leads_scoremodelversion_changelist"))
    assert page.status_code == 200 and 'id="activate-rule-score"' not in page.content.decode()
    assert client.post(reverse("admin:leads_scoremodelversion_rule_score")).status_code == 403
    assert active_version() is not None


def test_the_portal_shows_the_broker_why_the_model_scored_the_lead(client):
    synthetic_outcomes(2500, signal=True)
    broker = BrokerFactory()
    partner_lead, _ = candidates(broker)
    version = train().version_id

    client.force_login(broker.user)
    html = client.get(reverse("portal:lead_detail", kwargs={"lead_id": partner_lead.pk})).content.decode()
    explanation = reload(partner_lead).score_breakdown["explanation"]
    assert f"From {PARTNER} (+)" in explanation or f"from {PARTNER} (+)" in explanation
    assert explanation in html
    assert f"Learned score, model version {version}" in html
