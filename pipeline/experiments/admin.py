"""Experiments in the admin: create a draft with its variants, start it (the sample size is fixed from then on),
read the figures per variant, and stop it with the winner of your choice (a button per variant on the figures
table: every new lead goes to that variant's campaign). Every change goes through pipeline/experiments/services.py.
"""

from __future__ import annotations

from contextvars import ContextVar

from django.contrib import admin, messages
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.middleware.csrf import get_token
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from pipeline.models import Experiment, ExperimentVariant

from .models import ExperimentStatus
from .selectors import experiment_results
from .services import ExperimentError, experiment_archive, experiment_start, experiment_stop


class VariantInline(admin.TabularInline):
    model = ExperimentVariant
    extra = 2
    fields = ("name", "weight", "instantly_campaign_id")

    def _draft(self, obj) -> bool:
        return obj is None or obj.status == ExperimentStatus.DRAFT

    def has_add_permission(self, request, obj=None):
        return self._draft(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return self._draft(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._draft(obj) and super().has_delete_permission(request, obj)


# The CSRF token of the request being rendered, for the stop buttons (a context variable: one admin instance serves
# every thread).
_CSRF_TOKEN: ContextVar[str] = ContextVar("experiment_admin_csrf_token", default="")


def _pct(interval) -> str:
    return f"{interval.rate:.1%} ({interval.low:.1%} to {interval.high:.1%})"


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    list_display = ("name", "status", "sample_size", "started_at", "stopped_at", "winner")
    list_filter = ("status",)
    inlines = (VariantInline,)
    actions = ("start_experiments", "archive_experiments")

    def get_readonly_fields(self, request, obj=None):
        fixed = ("status", "started_at", "stopped_at", "winner", "results")
        if obj is not None and obj.status != ExperimentStatus.DRAFT:
            return ("name", "sample_size", *fixed)  # fixed once started: no peeking by moving the goalposts
        return fixed

    def get_fields(self, request, obj=None):
        return ("name", "note", "sample_size", "status", "started_at", "stopped_at", "winner", "results")

    def has_delete_permission(self, request, obj=None):
        return (obj is None or obj.status == ExperimentStatus.DRAFT) and super().has_delete_permission(request, obj)

    @admin.display(description="figures per variant (reply rate judged against the first variant)")
    def results(self, obj):
        if obj is None or obj.pk is None:
            return "—"
        figures = experiment_results(experiment=obj)
        token = _CSRF_TOKEN.get()
        rows = []
        for figure in figures:
            verdict = "control" if figure.control else figure.judgement.text
            stop = ""
            if obj.status == ExperimentStatus.RUNNING:
                stop = format_html(
                    '<form method="post" action="{}"><input type="hidden" name="csrfmiddlewaretoken" value="{}">'
                    '<button type="submit">Stop: all new leads to {}</button></form>',
                    reverse("admin:pipeline_experiment_stop", args=[obj.pk, figure.variant_id]),
                    token,
                    figure.name,
                )
            rows.append(
                (
                    figure.name,
                    figure.fed,
                    figure.replied,
                    _pct(figure.reply_rate),
                    figure.booked,
                    _pct(figure.booked_rate),
                    figure.unsubscribed,
                    _pct(figure.unsubscribed_rate),
                    verdict,
                    stop,
                )
            )
        body = format_html_join("", "<tr>" + "<td>{}</td>" * 10 + "</tr>", rows)
        return format_html(
            '<table class="experiment-results"><thead><tr><th>variant</th><th>fed</th><th>replied</th>'
            "<th>reply rate (95% Wilson)</th><th>booked</th><th>booked rate</th><th>unsubscribed</th>"
            "<th>unsubscribe rate</th><th>difference</th><th></th></tr></thead><tbody>{}</tbody></table>"
            "<p>Sample size per variant: {}. A difference is judged only once every variant reached it.</p>",
            body,
            obj.sample_size,
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        reset = _CSRF_TOKEN.set(get_token(request))
        try:
            response = super().change_view(request, object_id, form_url, extra_context)
            if hasattr(response, "render"):
                response.render()  # while the token is set
            return response
        finally:
            _CSRF_TOKEN.reset(reset)

    def get_urls(self):
        return [
            path(
                "<int:experiment_id>/stop/<int:variant_id>/",
                self.admin_site.admin_view(self.stop_view),
                name="pipeline_experiment_stop",
            ),
            *super().get_urls(),
        ]

    def stop_view(self, request, experiment_id: int, variant_id: int):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        experiment = get_object_or_404(Experiment, pk=experiment_id)
        if not self.has_change_permission(request, experiment):
            return HttpResponseRedirect(reverse("admin:index"))
        try:
            experiment_stop(experiment=experiment, winner=variant_id, user=request.user)
            self.message_user(request, f"“{experiment.name}” stopped: new leads go to the winner", messages.SUCCESS)
        except ExperimentError as error:
            self.message_user(request, str(error), messages.ERROR)
        return HttpResponseRedirect(reverse("admin:pipeline_experiment_change", args=[experiment_id]))

    @admin.action(description="Start (fixes the sample size and the variants)")
    def start_experiments(self, request, queryset):
        for experiment in queryset:
            try:
                experiment_start(experiment=experiment, user=request.user)
                self.message_user(request, f"“{experiment.name}” started", messages.SUCCESS)
            except ExperimentError as error:
                self.message_user(request, str(error), messages.ERROR)

    @admin.action(description="Archive (new leads go back to INSTANTLY_CAMPAIGN_ID)")
    def archive_experiments(self, request, queryset):
        for experiment in queryset:
            try:
                experiment_archive(experiment=experiment, user=request.user)
            except ExperimentError as error:
                self.message_user(request, str(error), messages.ERROR)
