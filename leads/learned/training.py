"""Fit, judge and explain the learned score: arrays in, figures out (no database here).

`candidates_train(rows, labels, rule_scores, …)` splits the outcomes by time (they come oldest first: the newest
`holdout_share` is the holdout), fits logistic regression and `HistGradientBoostingClassifier` on the older part,
and judges each on the holdout by AUC and by precision at the daily limit (the share of positives among the
`limit` leads it ranks highest, ties shared out evenly). The better AUC wins; the rule score is judged on the same
holdout. `Decision` says whether the winner may replace the rule score: enough outcomes, AUC at least
`min_auc_gain` higher, a gain that holds in 97.5% of paired bootstrap resamples of the holdout (noise alone moves
AUC by a few hundredths on a small holdout), precision at the limit not lower.

`ScoreModel.explain(rows)` gives each lead's top contributions: for each feature, the change in log-odds when that
feature is set to its typical value (the training mean of its columns); the largest, in words.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field

import joblib
import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from .features import GROUPS, Featurizer

LOGISTIC_REGRESSION = "logistic_regression"
GRADIENT_BOOSTING = "hist_gradient_boosting"
TOP_CONTRIBUTIONS = 3
MIN_EFFECT = 0.05  # log-odds: smaller effects are not worth a broker's attention
MIN_TRAINABLE = 20  # fewer outcomes (or one class only) cannot be fitted or judged at all


class NotTrainable(Exception):
    """Too few outcomes, or only one kind, to fit or judge a model; the message says which."""


def _estimator(kind: str):
    if kind == LOGISTIC_REGRESSION:
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=300))
    # Leaves of at least 40 leads and an L2 penalty: outcomes are few and noisy, and noise must not look like a signal.
    return HistGradientBoostingClassifier(
        max_iter=60, learning_rate=0.15, max_leaf_nodes=15, min_samples_leaf=40, l2_regularization=1.0, random_state=0
    )


def precision_at(scores: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Positives among the `k` highest scores; leads tied at the cut count by the share of them that fits."""
    if k <= 0 or not len(scores):
        return 0.0
    k = min(k, len(scores))
    threshold = np.sort(scores)[::-1][k - 1]
    above = scores > threshold
    tied = scores == threshold
    slots = k - int(above.sum())
    tied_positives = float(labels[tied].sum()) * slots / int(tied.sum())
    return (float(labels[above].sum()) + tied_positives) / k


BOOTSTRAP_ROUNDS = 100
BOOTSTRAP_MAX_ROWS = 20_000
# The gradient-boosted candidate learns from a random sample of at most this many training rows: beyond it, more
# rows of these few features add little and cost time (the nightly job has a minute for a million outcomes).
BOOSTING_MAX_ROWS = 200_000


def auc_gain_lower_bound(model_scores: np.ndarray, rule_scores: np.ndarray, labels: np.ndarray) -> float | None:
    """The 2.5th percentile of (model AUC - max(rule AUC, 0.5)) over paired bootstrap resamples of the holdout.

    On a holdout of a thousand leads, noise alone moves AUC by a few hundredths: without this, a model of pure noise
    clears the 0.02 bar about half the time. The gain must be there in 97.5% of the resamples, over the rule score and
    over chance (a rule score that does worse than chance on the holdout is no bar to clear)."""
    rng = np.random.default_rng(0)
    n = len(labels)
    if n > BOOTSTRAP_MAX_ROWS:
        keep = rng.choice(n, BOOTSTRAP_MAX_ROWS, replace=False)
        model_scores, rule_scores, labels, n = model_scores[keep], rule_scores[keep], labels[keep], BOOTSTRAP_MAX_ROWS
    gains = []
    for _ in range(BOOTSTRAP_ROUNDS):
        sample = rng.integers(0, n, n)
        drawn = labels[sample]
        if not 0 < drawn.sum() < n:
            continue
        bar = max(roc_auc_score(drawn, rule_scores[sample]), 0.5)
        gains.append(roc_auc_score(drawn, model_scores[sample]) - bar)
    return round(float(np.percentile(gains, 2.5)), 4) if gains else None


def figures(scores: np.ndarray, labels: np.ndarray, k: int) -> dict:
    auc = float(roc_auc_score(labels, scores)) if 0 < labels.sum() < len(labels) else None
    return {
        "auc": None if auc is None else round(auc, 4),
        "precision_at_limit": round(precision_at(scores, labels, k), 4),
    }


@dataclass
class ScoreModel:
    """A fitted model with its featurizer: what `model_bytes` holds."""

    kind: str
    featurizer: Featurizer
    estimator: object

    def probabilities(self, matrix: np.ndarray) -> np.ndarray:
        return self.estimator.predict_proba(matrix)[:, 1]

    def explain(self, rows: list[tuple], matrix: np.ndarray, probabilities: np.ndarray) -> list[list[dict]]:
        """Per row, up to TOP_CONTRIBUTIONS {"feature", "words", "effect"} (effect in log-odds), largest first."""
        base = _logit(probabilities)
        effects = np.zeros((len(rows), len(GROUPS)))
        for position, group in enumerate(GROUPS):
            columns = self.featurizer.slices[group]
            swapped = matrix.copy()
            swapped[:, columns] = self.featurizer.baseline[columns]
            effects[:, position] = base - _logit(self.probabilities(swapped))
        explained = []
        for index, row in enumerate(rows):
            order = np.argsort(-np.abs(effects[index]))[:TOP_CONTRIBUTIONS]
            explained.append(
                [
                    {
                        "feature": GROUPS[position],
                        "words": self.featurizer.words(GROUPS[position], row),
                        "effect": round(float(effects[index, position]), 3),
                    }
                    for position in order
                    if abs(effects[index, position]) >= MIN_EFFECT
                ]
            )
        return explained

    def dumps(self) -> bytes:
        buffer = io.BytesIO()
        joblib.dump(self, buffer, compress=3)
        return buffer.getvalue()

    @staticmethod
    def loads(data: bytes) -> ScoreModel:
        return joblib.load(io.BytesIO(bytes(data)))


def explanation_text(contributions: list[dict]) -> str:
    """ "High equity (+), owner occupied (+), in TX (-)": the contributions in words, largest first."""
    if not contributions:
        return "No single feature stands out."
    text = ", ".join(f"{item['words']} ({'+' if item['effect'] > 0 else '-'})" for item in contributions)
    return text[:1].upper() + text[1:]


def _logit(probabilities: np.ndarray) -> np.ndarray:
    clipped = np.clip(probabilities, 1e-6, 1 - 1e-6)
    return np.log(clipped / (1 - clipped))


@dataclass
class Decision:
    promoted: bool
    reasons: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "; ".join(self.reasons)


def decide(*, model: dict, rule: dict, n_outcomes: int, min_outcomes: int, min_auc_gain: float) -> Decision:
    """Whether the model may replace the rule score, and why (or why not), in words for the admin."""
    reasons, promoted = [], True
    if n_outcomes < min_outcomes:
        promoted = False
        reasons.append(f"trained on {n_outcomes:,} outcomes; at least {min_outcomes:,} are needed")
    if model["auc"] is None or rule["auc"] is None:
        promoted = False
        reasons.append("the holdout has only one kind of outcome: AUC cannot be judged")
    elif model["auc"] < rule["auc"] + min_auc_gain - 1e-9:
        promoted = False
        reasons.append(
            f"AUC {model['auc']:.3f} vs the rule score's {rule['auc']:.3f}: not {min_auc_gain:.2f} or more higher"
        )
    lower = model.get("auc_gain_lower_bound", 1.0)
    if model["auc"] is not None and rule["auc"] is not None and (lower is None or lower <= 0):
        promoted = False
        reasons.append(f"the AUC gain is not steady: in 1 resample of the holdout in 40 it is {lower} or less")
    if model["precision_at_limit"] < rule["precision_at_limit"] - 1e-9:
        promoted = False
        reasons.append(
            f"precision at the daily limit {model['precision_at_limit']:.3f} is below the rule score's "
            f"{rule['precision_at_limit']:.3f}"
        )
    if promoted:
        reasons.append(
            f"AUC {model['auc']:.3f} vs {rule['auc']:.3f}, precision at the daily limit "
            f"{model['precision_at_limit']:.3f} vs {rule['precision_at_limit']:.3f}, on {n_outcomes:,} outcomes"
        )
    return Decision(promoted=promoted, reasons=reasons)


@dataclass
class Trained:
    model: ScoreModel
    metrics: dict
    decision: Decision
    n_train: int
    n_holdout: int


def candidates_train(
    rows: list[tuple],
    labels: np.ndarray,
    rule_scores: np.ndarray,
    *,
    limit: int,
    holdout_share: float,
    min_outcomes: int,
    min_auc_gain: float,
) -> Trained:
    """Fit both candidates on the older outcomes, judge them and the rule score on the newest; pick and decide.

    `rows` are FEATURES_SELECT rows oldest first, `labels` 1 for a reply or booking, `rule_scores` the rule score
    of each lead. Raises NotTrainable when there is too little to fit or judge."""
    n = len(rows)
    if n < MIN_TRAINABLE:
        raise NotTrainable(f"{n} outcomes: at least {MIN_TRAINABLE} are needed to train at all")
    cut = n - max(1, math.ceil(n * holdout_share))
    train_rows, holdout_rows = rows[:cut], rows[cut:]
    train_labels, holdout_labels = labels[:cut], labels[cut:]
    if not 0 < train_labels.sum() < len(train_labels):
        raise NotTrainable("the older outcomes are all of one kind (all answered or none): nothing to learn")
    featurizer = Featurizer().fit(train_rows)
    train_matrix = featurizer.transform(train_rows)
    holdout_matrix = featurizer.transform(holdout_rows)
    k = min(limit, len(holdout_rows))
    candidates = {}
    for kind in (LOGISTIC_REGRESSION, GRADIENT_BOOSTING):
        fit_matrix, fit_labels = train_matrix, train_labels
        if kind == GRADIENT_BOOSTING and len(train_labels) > BOOSTING_MAX_ROWS:
            sample = np.random.default_rng(0).choice(len(train_labels), BOOSTING_MAX_ROWS, replace=False)
            fit_matrix, fit_labels = train_matrix[sample], train_labels[sample]
        estimator = _estimator(kind).fit(fit_matrix, fit_labels)
        model = ScoreModel(kind=kind, featurizer=featurizer, estimator=estimator)
        candidates[kind] = (model, figures(model.probabilities(holdout_matrix), holdout_labels, k))
    best_kind = max(candidates, key=lambda kind: candidates[kind][1]["auc"] or 0.0)
    best, best_figures = candidates[best_kind]
    holdout_rule = np.asarray(rule_scores[cut:], dtype=float)
    rule = figures(holdout_rule, holdout_labels, k)
    if best_figures["auc"] is not None:
        best_figures["auc_gain_lower_bound"] = auc_gain_lower_bound(
            best.probabilities(holdout_matrix), holdout_rule, holdout_labels
        )
    metrics = {
        "model": best_figures,
        "rule": rule,
        "candidates": {kind: found for kind, (_, found) in candidates.items()},
        "limit": k,
        "holdout_positives": int(holdout_labels.sum()),
        "train_positives": int(train_labels.sum()),
    }
    decision = decide(
        model=best_figures, rule=rule, n_outcomes=n, min_outcomes=min_outcomes, min_auc_gain=min_auc_gain
    )
    return Trained(model=best, metrics=metrics, decision=decision, n_train=cut, n_holdout=n - cut)
