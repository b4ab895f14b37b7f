"""The learned score's versions in the admin: each with its figures against the rule score on its holdout, the one
ranking the leads now, and the switch (activate a version; back to the rule score). Both switches call
leads/learned/services.py and need the change permission (admins; ops may look)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.http import HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.views.decorators.http import require_POST

from leads.models import ScoreModelVersion

from .services import ScoreModelError, rule_score_activate, score_model_activate


def _figure(value) -> str:
    return "—" if value is None else f"{value:.3f}"


@admin.register(ScoreModelVersion)
class ScoreModelVersionAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "kind",
        "trained_at",
        "n_outcomes",
        "model_auc",
        "rule_auc",
        "model_precision",
        "rule_precision",
        "promoted",
        "active",
        "decision",
    )
    list_filter = ("active", "promoted", "kind")
    ordering = ("-trained_at", "-id")
    actions = ("activate_version",)
    exclude = ("model_bytes",)
    readonly_fields = (
        "kind",
        "trained_at",
        "n_outcomes",
        "n_train",
        "n_holdout",
        "metrics",
        "promoted",
        "decision",
        "active",
        "activated_at",
    )

    @admin.display(description="AUC")
    def model_auc(self, version):
        return _figure(version.figure("model", "auc"))

    @admin.display(description="rule score AUC")
    def rule_auc(self, version):
        return _figure(version.figure("rule", "auc"))

    @admin.display(description="precision at the daily limit")
    def model_precision(self, version):
        return _figure(version.figure("model", "precision_at_limit"))

    @admin.display(description="rule score precision")
    def rule_precision(self, version):
        return _figure(version.figure("rule", "precision_at_limit"))

    def has_add_permission(self, request):
        return False  # versions come from the nightly training only

    def has_delete_permission(self, request, obj=None):
        return False  # a version is the record of what ranked the leads

    def get_queryset(self, request):
        return super().get_queryset(request).defer("model_bytes")

    def get_urls(self):
        return [
            path(
                "rule-score/",
                self.admin_site.admin_view(require_POST(self.rule_score_view)),
                name="leads_scoremodelversion_rule_score",
            ),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "active_version": ScoreModelVersion.objects.filter(active=True).defer("model_bytes").first(),
            "can_switch": self.has_change_permission(request),
            "rule_score_url": reverse("admin:leads_scoremodelversion_rule_score"),
        }
        return super().changelist_view(request, extra_context)

    def rule_score_view(self, request):
        if not self.has_change_permission(request):
            return HttpResponse(status=403)
        restored = rule_score_activate(user=request.user)
        self.message_user(request, f"The rule score ranks the leads again ({restored} leads re-scored by the rules).")
        return HttpResponseRedirect(reverse("admin:leads_scoremodelversion_changelist"))

    @admin.action(description="Activate the selected version (it ranks the leads from now on)", permissions=["change"])
    def activate_version(self, request, queryset):
        chosen = list(queryset.values_list("pk", flat=True)[:2])
        if len(chosen) != 1:
            self.message_user(request, "Select exactly one version to activate.", messages.WARNING)
            return
        try:
            scored = score_model_activate(version_id=chosen[0], user=request.user)
        except ScoreModelError as error:
            self.message_user(request, str(error), messages.ERROR)
            return
        self.message_user(request, f"Version {chosen[0]} ranks the leads now ({scored} leads scored).")
