"""Training the learned score, and choosing which score ranks the leads (service context).

- `score_model_train`: train both candidates on the recorded outcomes, store the winner as a new version with
  its figures against the rule score, make it active when it clears the bar (settings SCORE_MODEL_*), then score
  the feeder's candidates with the active model, if any. A version that does not clear the bar is stored too, so
  the admin shows why; the score in use does not change.
- `score_model_activate`: make a stored version the active one (an operator's choice in the admin) and score the
  candidates with it; records `score_model_activated`.
- `rule_score_activate`: no version active; every lead a model scored gets its rule score back; records
  `rule_score_activated`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from equity_connect.events import record_event
from leads.models import ScoreModelVersion

from .outcomes import outcomes_load
from .scoring import leads_score_with_model, rule_scores_restore
from .training import NotTrainable, ScoreModel, candidates_train


class ScoreModelError(Exception):
    """A model version cannot be used; the message is safe to show."""


@dataclass
class TrainingOutcome:
    message: str
    version_id: int | None = None
    promoted: bool = False
    n_outcomes: int = 0
    scored: int = 0
    metrics: dict | None = None


def score_model_train(*, now: dt.datetime | None = None) -> TrainingOutcome:
    """Train, store and maybe promote a version; then score the candidates with the active model, if any.

    Changes: a `score_model_versions` row (unless there is too little to train on); the active flag when promoted;
    `lead_score` / `score_breakdown` of the feeder's candidates when a model is active."""
    now = now or timezone.now()
    outcomes = outcomes_load(now=now, sequence_days=settings.SCORE_MODEL_SEQUENCE_DAYS)
    with transaction.atomic():
        try:
            trained = candidates_train(
                outcomes.rows,
                outcomes.labels,
                outcomes.rule_scores,
                limit=settings.FEEDER_DAILY_LIMIT,
                holdout_share=settings.SCORE_MODEL_HOLDOUT_SHARE,
                min_outcomes=settings.SCORE_MODEL_MIN_OUTCOMES,
                min_auc_gain=settings.SCORE_MODEL_MIN_AUC_GAIN,
            )
        except NotTrainable as exc:
            scored = _score_with_active()
            return TrainingOutcome(message=f"no model trained: {exc}", n_outcomes=len(outcomes), scored=scored)
        metrics = {**trained.metrics, "explored": outcomes.explored}
        version = ScoreModelVersion.objects.create(
            kind=trained.model.kind,
            trained_at=now,
            n_outcomes=len(outcomes),
            n_train=trained.n_train,
            n_holdout=trained.n_holdout,
            metrics=metrics,
            promoted=trained.decision.promoted,
            decision=trained.decision.text,
            model_bytes=trained.model.dumps(),
        )
        if trained.decision.promoted:
            _activate(version, now=now)
        scored = _score_with_active()
    verdict = "promoted" if trained.decision.promoted else "not promoted"
    return TrainingOutcome(
        message=f"score model v{version.pk} ({trained.model.kind}) {verdict}: {trained.decision.text}"
        + (f"; {scored} leads scored by the active model" if scored else ""),
        version_id=version.pk,
        promoted=trained.decision.promoted,
        n_outcomes=len(outcomes),
        scored=scored,
        metrics=metrics,
    )


def score_model_activate(*, version_id: int, user=None) -> int:
    """Make version `version_id` the one that ranks the leads and score the candidates with it; returns how many
    leads it scored. Records `score_model_activated`. Raises ScoreModelError for an unknown version."""
    with transaction.atomic():
        version = ScoreModelVersion.objects.select_for_update().filter(pk=version_id).first()
        if version is None:
            raise ScoreModelError(f"there is no score model version {version_id}")
        _activate(version, now=timezone.now())
        scored = leads_score_with_model(model=ScoreModel.loads(version.model_bytes), version_id=version.pk)
        record_event(
            "score_model_activated",
            data={"version": version.pk, "kind": version.kind, "scored": scored, "by": _who(user)},
        )
    return scored


def rule_score_activate(*, user=None) -> int:
    """Go back to the rule score: no version active, and each lead a model scored gets its rule score back;
    returns how many. Records `rule_score_activated`."""
    with transaction.atomic():
        previous = list(ScoreModelVersion.objects.select_for_update().filter(active=True).values_list("pk", flat=True))
        ScoreModelVersion.objects.filter(active=True).update(active=False)
        restored = rule_scores_restore()
        record_event(
            "rule_score_activated", data={"previous_versions": previous, "restored": restored, "by": _who(user)}
        )
    return restored


def _activate(version: ScoreModelVersion, *, now: dt.datetime) -> None:
    ScoreModelVersion.objects.filter(active=True).exclude(pk=version.pk).update(active=False)
    ScoreModelVersion.objects.filter(pk=version.pk).update(active=True, activated_at=now)
    version.active, version.activated_at = True, now


def _score_with_active() -> int:
    active = ScoreModelVersion.objects.filter(active=True).first()
    if active is None:
        return 0
    return leads_score_with_model(model=ScoreModel.loads(active.model_bytes), version_id=active.pk)


def _who(user) -> str:
    return getattr(user, "username", "") or "system"
