"""The active model's scores for the feeder's candidates, written set-based.

The candidates are the leads the feeder may pick (the conditions of `mv_contactable_leads`, queued and never fed),
read from `leads` itself so that a lead queued since the view's last refresh is scored too. They are read in one
query, predicted and explained in batches, ranked, and written back in chunks with one
`UPDATE … FROM unnest(ids, scores, breakdowns)` each, never row by row:
- `lead_score` is the lead's percentile among the candidates by the model's probability (0-100), so the feeder,
  the portal and the rule score keep one 0-100 scale;
- `score_breakdown` is `{"model_version", "kind", "probability", "percentile", "contributions", "explanation",
  "total"}`; the rule score's breakdown has `"version": 1` instead. The ingestion re-scores a lead it merges by
  the rules, which writes the rule breakdown back: the breakdown always says which score the lead holds.

`rule_scores_restore()` gives every lead the model scored its rule score back (going back to the rule score).
"""

from __future__ import annotations

import json

import numpy as np
from django.db import connection
from scipy.stats import rankdata

from leads.scoring import leads_rescore

from .features import FEATURES_FROM, FEATURES_SELECT
from .training import ScoreModel, explanation_text

BATCH = 50_000
WRITE_CHUNK = 20_000

CANDIDATES_SQL = f"""
SELECT l.id, {FEATURES_SELECT}
  FROM {FEATURES_FROM}
 WHERE l.consent AND l.consented_at IS NOT NULL AND (l.email_verified OR l.phone_verified)
   AND l.assigned_broker_id IS NOT NULL AND l.merged_into_id IS NULL
   AND l.campaign_status = 'queued' AND l.added_to_campaign_at IS NULL
 ORDER BY l.id
"""
WRITE_SQL = """
UPDATE leads l SET lead_score = s.score, score_breakdown = s.breakdown::jsonb
  FROM unnest(%s::uuid[], %s::int[], %s::text[]) AS s(id, score, breakdown)
 WHERE l.id = s.id
"""
MODEL_SCORED_SQL = "SELECT id FROM leads WHERE score_breakdown ? 'model_version'"


def leads_score_with_model(*, model: ScoreModel, version_id: int) -> int:
    """Score the feeder's candidates with `model` (version `version_id`); returns how many were scored."""
    with connection.cursor() as cursor:
        cursor.execute(CANDIDATES_SQL)
        fetched = cursor.fetchall()
    if not fetched:
        return 0
    ids = [row[0] for row in fetched]
    rows = [row[1:] for row in fetched]
    probabilities = np.empty(len(rows))
    explanations: list[list[dict]] = []
    for start in range(0, len(rows), BATCH):
        batch = rows[start : start + BATCH]
        matrix = model.featurizer.transform(batch)
        found = model.probabilities(matrix)
        probabilities[start : start + len(batch)] = found
        explanations.extend(model.explain(batch, matrix, found))
    percentiles = np.rint(100 * rankdata(probabilities, method="max") / len(rows)).astype(int)
    breakdowns = [
        json.dumps(
            {
                "model_version": version_id,
                "kind": model.kind,
                "probability": round(float(probability), 4),
                "percentile": int(percentile),
                "contributions": contributions,
                "explanation": explanation_text(contributions),
                "total": int(percentile),
            }
        )
        for probability, percentile, contributions in zip(probabilities, percentiles, explanations, strict=True)
    ]
    with connection.cursor() as cursor:
        for start in range(0, len(ids), WRITE_CHUNK):
            end = start + WRITE_CHUNK
            cursor.execute(
                WRITE_SQL, [[str(i) for i in ids[start:end]], percentiles[start:end].tolist(), breakdowns[start:end]]
            )
    return len(ids)


def rule_scores_restore() -> int:
    """Every lead a model scored gets its rule score and breakdown back; returns how many."""
    with connection.cursor() as cursor:
        cursor.execute(MODEL_SCORED_SQL)
        ids = [row[0] for row in cursor.fetchall()]
    return leads_rescore(lead_ids=ids) if ids else 0
