"""Which campaign each fed lead goes to: the feeder's one call into experiments.

- An experiment is running: each lead goes to a variant chosen by a stable hash — sha256(experiment id, lead id)
  read as a number, modulo the sum of the weights, walked along the variants' weights in id order — so a lead
  always lands in the same variant (a retry, a re-feed) and the split follows the weights. The assignment is
  recorded (`experiment_assignments`: lead, experiment, variant, channel, fed_at).
- The last experiment was stopped with a winner (not archived): every lead goes to the winner's campaign.
- Otherwise: the default campaign (INSTANTLY_CAMPAIGN_ID).
The daily limit is the feeder's: it claims the day's leads first, then they are split, so the variants share it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from django.utils import timezone

from pipeline.models import Experiment, ExperimentAssignment, ExperimentVariant

from .models import ExperimentStatus


@dataclass
class Route:
    campaign_id: str
    leads: list = field(default_factory=list)
    variant_id: int | None = None


def variant_for(*, experiment_id: int, lead_id, variants: list[ExperimentVariant]) -> ExperimentVariant:
    """The lead's variant: stable for the same experiment, lead and variants."""
    ordered = sorted(variants, key=lambda variant: variant.id)
    total = sum(variant.weight for variant in ordered)
    if not ordered or total <= 0:
        raise ValueError("an experiment needs variants with positive weights")
    digest = hashlib.sha256(f"{experiment_id}:{lead_id}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") % total
    for variant in ordered:
        if point < variant.weight:
            return variant
        point -= variant.weight
    return ordered[-1]  # not reached


def routing_experiment() -> Experiment | None:
    """The experiment that routes the feed now: the running one, else the last stopped one (with its winner)."""
    running = Experiment.objects.filter(status=ExperimentStatus.RUNNING).first()
    if running is not None:
        return running
    last = Experiment.objects.exclude(status=ExperimentStatus.DRAFT).order_by("-started_at", "-id").first()
    if last is not None and last.status == ExperimentStatus.STOPPED and last.winner_id:
        return last
    return None


def feed_routes(*, leads: list, default_campaign_id: str, channel: str = "email", record: bool = True) -> list[Route]:
    """The leads grouped by the campaign they go to (in their order), assignments recorded when `record`."""
    experiment = routing_experiment()
    if experiment is None or not leads:
        return [Route(default_campaign_id, list(leads))] if leads else []
    if experiment.status == ExperimentStatus.STOPPED:
        winner = experiment.winner
        return [Route(winner.instantly_campaign_id, list(leads), winner.id)]
    variants = list(experiment.variants.all())
    routes: dict[int, Route] = {}
    chosen = []
    for lead in leads:
        variant = variant_for(experiment_id=experiment.id, lead_id=lead.id, variants=variants)
        routes.setdefault(variant.id, Route(variant.instantly_campaign_id, [], variant.id)).leads.append(lead)
        chosen.append((lead, variant))
    if record:
        now = timezone.now()
        ExperimentAssignment.objects.bulk_create(
            [
                ExperimentAssignment(
                    lead_id=lead.id, experiment=experiment, variant=variant, channel=channel, fed_at=now
                )
                for lead, variant in chosen
            ],
            ignore_conflicts=True,  # a lead fed again (a retry) keeps its first assignment
        )
    return [routes[variant.id] for variant in sorted(variants, key=lambda v: v.id) if variant.id in routes]
