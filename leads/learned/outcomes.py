"""What happened to the leads we fed, read from `pipeline_events` (selectors for the training).

A lead was fed when it got a `campaign_added` event (the feeder marks the randomly drawn ones `exploration`).
After that feed:
- positive: `email_replied` or `appointment_booked`;
- negative: `email_bounced` or `unsubscribed`, or nothing of these SCORE_MODEL_SEQUENCE_DAYS after the feed
  (the sequence ended unanswered);
- leads fed more recently that have no answer yet are left out: their outcome is not known.
Rows come oldest feed first, for the time-based holdout. The lead's features are read as they are now; the rule
score is computed as it would have ranked the lead when it was queued (behavioral points of `queued`), so that
a reply the lead sent since does not flatter it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
from django.db import connection

from leads.scoring import LEAD_COLUMNS, category_sql

from .features import FEATURES_FROM, FEATURES_SELECT, WIDTH

POSITIVE_EVENTS = ("email_replied", "appointment_booked")
NEGATIVE_EVENTS = ("email_bounced", "unsubscribed")

_RULE_INPUTS = {name: f"l.{name}" for name in LEAD_COLUMNS if name != "campaign_status"}


def _rule_score_sql() -> str:
    parts = category_sql({**_RULE_INPUTS, "campaign_status": "'queued'"})
    return f"greatest(0, least(100, round({' + '.join(parts.values())})))::int"


def outcomes_sql() -> str:
    # One pass over the leads' relevant events (the window gives each its lead's last feed), then one row per lead:
    # no join of events to events, whatever the planner thinks of the sizes.
    return f"""
WITH relevant AS (
  SELECT lead_id, event_type, created_at, event_data,
         max(created_at) FILTER (WHERE event_type = 'campaign_added') OVER (PARTITION BY lead_id) AS fed_at
    FROM pipeline_events
   WHERE lead_id IS NOT NULL AND event_type = ANY(%(relevant)s)
), outcome AS (
  SELECT lead_id, max(fed_at) AS fed_at,
         coalesce(bool_or((event_data ->> 'exploration')::boolean)
                  FILTER (WHERE event_type = 'campaign_added' AND created_at = fed_at), false) AS exploration,
         coalesce(bool_or(event_type = ANY(%(positive)s)) FILTER (WHERE created_at >= fed_at), false) AS positive,
         coalesce(bool_or(event_type = ANY(%(answers)s)) FILTER (WHERE created_at >= fed_at), false) AS answered
    FROM relevant
   WHERE fed_at IS NOT NULL
   GROUP BY lead_id
)
SELECT {FEATURES_SELECT}, o.positive, o.exploration, {_rule_score_sql()} AS rule_score
  FROM outcome o
  JOIN {FEATURES_FROM} ON l.id = o.lead_id
 WHERE o.answered OR o.fed_at < %(unanswered_before)s
 ORDER BY o.fed_at, o.lead_id
"""


@dataclass
class Outcomes:
    rows: list[tuple]  # FEATURES_SELECT rows
    labels: np.ndarray
    rule_scores: np.ndarray
    explored: int

    def __len__(self) -> int:
        return len(self.rows)


def outcomes_load(*, now: dt.datetime, sequence_days: int) -> Outcomes:
    """The fed leads with a known outcome, oldest feed first (service context)."""
    with connection.cursor() as cursor:
        cursor.execute(
            outcomes_sql(),
            {
                "relevant": ["campaign_added", *POSITIVE_EVENTS, *NEGATIVE_EVENTS],
                "positive": list(POSITIVE_EVENTS),
                "answers": [*POSITIVE_EVENTS, *NEGATIVE_EVENTS],
                "unanswered_before": now - dt.timedelta(days=sequence_days),
            },
        )
        fetched = cursor.fetchall()
    return Outcomes(
        rows=[row[:WIDTH] for row in fetched],
        labels=np.fromiter((row[WIDTH] for row in fetched), dtype=float, count=len(fetched)),
        rule_scores=np.fromiter((row[WIDTH + 2] for row in fetched), dtype=float, count=len(fetched)),
        explored=sum(1 for row in fetched if row[WIDTH + 1]),
    )
