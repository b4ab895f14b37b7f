"""The counts of an experiment per variant, and their figures (statistics.py)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection

from pipeline.models import Experiment

from .statistics import Interval, Judgement, comparison_judged, wilson_interval

# Outcomes after the lead was fed: a reply (e-mail or text), a booked appointment, an unsubscribe (or STOP).
_COUNTS_SQL = """
SELECT a.variant_id,
       count(*) AS fed,
       count(*) FILTER (WHERE EXISTS (SELECT 1 FROM pipeline_events e WHERE e.lead_id = a.lead_id
                         AND e.event_type IN ('email_replied', 'sms_replied') AND e.created_at >= a.fed_at)),
       count(*) FILTER (WHERE EXISTS (SELECT 1 FROM pipeline_events e WHERE e.lead_id = a.lead_id
                         AND e.event_type = 'appointment_booked' AND e.created_at >= a.fed_at)),
       count(*) FILTER (WHERE EXISTS (SELECT 1 FROM pipeline_events e WHERE e.lead_id = a.lead_id
                         AND e.event_type IN ('unsubscribed', 'sms_opted_out') AND e.created_at >= a.fed_at))
  FROM experiment_assignments a
 WHERE a.experiment_id = %(experiment)s
 GROUP BY a.variant_id
"""


@dataclass
class VariantFigures:
    variant_id: int
    name: str
    campaign_id: str
    weight: int
    fed: int
    replied: int
    booked: int
    unsubscribed: int
    reply_rate: Interval
    booked_rate: Interval
    unsubscribed_rate: Interval
    control: bool
    judgement: Judgement | None  # the reply rate against the control's (None for the control)


def experiment_results(*, experiment: Experiment) -> list[VariantFigures]:
    """Per variant (control first: the first variant): fed, replied, booked, unsubscribed, the rates with Wilson
    95% intervals, and the reply rate judged against the control at the fixed sample size."""
    with connection.cursor() as cursor:
        cursor.execute(_COUNTS_SQL, {"experiment": experiment.pk})
        counts = {row[0]: row[1:] for row in cursor.fetchall()}
    variants = list(experiment.variants.order_by("id"))
    if not variants:
        return []
    control = variants[0]
    control_fed, control_replied = counts.get(control.id, (0, 0, 0, 0))[:2]
    figures = []
    for variant in variants:
        fed, replied, booked, unsubscribed = counts.get(variant.id, (0, 0, 0, 0))
        judgement = None
        if variant.id != control.id:
            judgement = comparison_judged(
                x=replied,
                n=fed,
                control_x=control_replied,
                control_n=control_fed,
                sample_size=experiment.sample_size,
                comparisons=len(variants) - 1,
            )
        figures.append(
            VariantFigures(
                variant_id=variant.id,
                name=variant.name,
                campaign_id=variant.instantly_campaign_id,
                weight=variant.weight,
                fed=fed,
                replied=replied,
                booked=booked,
                unsubscribed=unsubscribed,
                reply_rate=wilson_interval(replied, fed),
                booked_rate=wilson_interval(booked, fed),
                unsubscribed_rate=wilson_interval(unsubscribed, fed),
                control=variant.id == control.id,
                judgement=judgement,
            )
        )
    return figures
