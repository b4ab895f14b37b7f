"""The learned score's versions (leads/learned/): declared here, part of the `leads` app (leads/models.py imports
them)."""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Now
from django.utils import timezone


class ScoreModelKind(models.TextChoices):
    LOGISTIC_REGRESSION = "logistic_regression", "logistic regression"
    GRADIENT_BOOSTING = "hist_gradient_boosting", "histogram gradient boosting"


class ScoreModelVersion(models.Model):
    """One nightly training of the learned score (leads/learned/): the better of two candidates on the time-based
    holdout, its figures and the rule score's on that holdout, and the fitted model itself.

    `model_bytes` is the fitted model serialized with joblib (a pickle): only our training job writes it and only
    service_role may read or write the table, so loading it runs no one else's bytes. At most one version is
    `active` (a partial unique index); none active means the rule score ranks the leads."""

    id = models.BigAutoField(primary_key=True)
    kind = models.CharField(max_length=32, choices=ScoreModelKind.choices)
    trained_at = models.DateTimeField(default=timezone.now, db_default=Now())
    n_outcomes = models.IntegerField("outcomes", help_text="Fed leads with a known outcome, train and holdout")
    n_train = models.IntegerField(default=0)
    n_holdout = models.IntegerField(default=0)
    # {"model": {"auc", "precision_at_limit"}, "rule": {…}, "candidates": {kind: {…}}, "limit", "positives", …}
    metrics = models.JSONField(default=dict, blank=True)
    promoted = models.BooleanField(default=False, help_text="It beat the rule score on the holdout when trained")
    decision = models.TextField(blank=True, default="", help_text="Why it was or was not promoted")
    active = models.BooleanField(default=False, help_text="It ranks the leads now")
    activated_at = models.DateTimeField(null=True, blank=True)
    model_bytes = models.BinaryField(editable=False)

    class Meta:
        db_table = "score_model_versions"
        ordering = ["-trained_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["active"], condition=models.Q(active=True), name="score_model_versions_one_active"
            ),
        ]

    def __str__(self) -> str:
        return f"score model v{self.pk} ({self.get_kind_display()})"

    def figure(self, side: str, name: str):
        return (self.metrics.get(side) or {}).get(name)
