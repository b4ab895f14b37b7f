"""The nightly training of the learned score (04:15 Los Angeles, before the 05:30 refresh of the view the feeder
reads): `score_model_train` (leads/learned/services.py) under the job's lock, with its `job_run` event."""

from __future__ import annotations

from leads.learned.services import score_model_train
from pipeline.jobs import SCORE_MODEL_TRAIN, JobReport, JobResult, job_run


def score_model_training() -> JobReport:
    outcome = score_model_train()
    return JobReport(
        message=outcome.message,
        data={
            "version": outcome.version_id,
            "promoted": outcome.promoted,
            "outcomes": outcome.n_outcomes,
            "scored": outcome.scored,
            "metrics": outcome.metrics or {},
        },
    )


def score_model_training_run() -> JobResult:
    return job_run(SCORE_MODEL_TRAIN, score_model_training)
