"""Write paths of experiments: start (the sample size is fixed from then on), stop (new leads go to the winner),
archive (new leads go back to INSTANTLY_CAMPAIGN_ID). The admin's actions call these; each records an event."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

from equity_connect.events import record_event
from pipeline.models import Experiment, ExperimentVariant

from .models import ExperimentStatus


class ExperimentError(Exception):
    """The experiment cannot change as asked; the message is safe to show."""


def _who(user) -> str:
    return user.get_username() if user is not None else ""


def experiment_start(*, experiment: Experiment | int, user=None) -> Experiment:
    """Start a draft: at least two variants, each with its own campaign and a positive weight; no other running.
    From now on the sample size and the variants are fixed. Records `experiment_started`."""
    with transaction.atomic():
        experiment = Experiment.objects.select_for_update().get(pk=getattr(experiment, "pk", experiment))
        if experiment.status != ExperimentStatus.DRAFT:
            raise ExperimentError(f"“{experiment.name}” is {experiment.status}: only a draft can start")
        variants = list(experiment.variants.order_by("id"))
        if len(variants) < 2:
            raise ExperimentError("an experiment needs at least two variants")
        campaigns = [variant.instantly_campaign_id.strip() for variant in variants]
        if not all(campaigns) or len(set(campaigns)) != len(campaigns):
            raise ExperimentError("each variant needs its own Instantly campaign id")
        if Experiment.objects.filter(status=ExperimentStatus.RUNNING).exists():
            raise ExperimentError("another experiment is running: stop it first")
        experiment.status = ExperimentStatus.RUNNING
        experiment.started_at = timezone.now()
        try:
            with transaction.atomic():
                experiment.save(update_fields=["status", "started_at"])
        except IntegrityError as exc:  # another start at the same moment
            raise ExperimentError("another experiment is running: stop it first") from exc
        record_event(
            "experiment_started",
            data={
                "experiment_id": experiment.pk,
                "name": experiment.name,
                "sample_size": experiment.sample_size,
                "variants": [{"id": v.id, "name": v.name, "weight": v.weight} for v in variants],
                "by": _who(user),
            },
        )
    return experiment


def experiment_stop(*, experiment: Experiment | int, winner: ExperimentVariant | int, user=None) -> Experiment:
    """Stop a running experiment: every new lead goes to `winner`'s campaign (until archived or another starts).
    Records `experiment_stopped`."""
    with transaction.atomic():
        experiment = Experiment.objects.select_for_update().get(pk=getattr(experiment, "pk", experiment))
        if experiment.status != ExperimentStatus.RUNNING:
            raise ExperimentError(f"“{experiment.name}” is {experiment.status}: only a running experiment stops")
        winner = experiment.variants.filter(pk=getattr(winner, "pk", winner)).first()
        if winner is None:
            raise ExperimentError("the winner must be one of the experiment's variants")
        experiment.status = ExperimentStatus.STOPPED
        experiment.stopped_at = timezone.now()
        experiment.winner = winner
        experiment.save(update_fields=["status", "stopped_at", "winner"])
        record_event(
            "experiment_stopped",
            data={"experiment_id": experiment.pk, "winner_id": winner.pk, "winner": winner.name, "by": _who(user)},
        )
    return experiment


def experiment_archive(*, experiment: Experiment | int, user=None) -> Experiment:
    """A stopped experiment stops routing: new leads go to INSTANTLY_CAMPAIGN_ID again."""
    with transaction.atomic():
        experiment = Experiment.objects.select_for_update().get(pk=getattr(experiment, "pk", experiment))
        if experiment.status != ExperimentStatus.STOPPED:
            raise ExperimentError("only a stopped experiment is archived")
        experiment.status = ExperimentStatus.ARCHIVED
        experiment.save(update_fields=["status"])
    return experiment
