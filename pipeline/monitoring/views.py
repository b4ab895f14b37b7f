"""Monitoring entry points: /healthz, /metrics (anonymous), /admin/dashboard/ (staff) and the broker's
dashboard at /portal/. Thin: each calls one module."""

from __future__ import annotations

import json

from django.contrib import admin
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.template.response import TemplateResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from leads.views.portal import broker_required
from pipeline.models import Alert, AlertState
from security.client_ip import client_ip
from security.middleware import without_db_context

from .dashboard import dashboard_figures
from .health import health_check
from .metrics import metrics_access_allowed, metrics_registry


@without_db_context  # anonymous callers; the checks open their own service context (and survive a dead DB)
@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    healthy, report = health_check()
    return JsonResponse(report, status=200 if healthy else 503)


@without_db_context
@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    if not metrics_access_allowed(
        authorization=request.headers.get("Authorization", ""), remote_addr=client_ip(request) or ""
    ):
        response = HttpResponse("unauthorized\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(metrics_registry()), content_type=CONTENT_TYPE_LATEST)


def _chart_data(figures: dict) -> dict:
    return {
        "daily_uploads": figures["daily_uploads"],
        "daily_leads": figures["daily_leads"],
        "campaign_status": figures["campaign_status"],
        "funnel": figures["funnel"],
        "verification": {
            "email": figures["verification"]["email_rate"],
            "phone": figures["verification"]["phone_rate"],
            "either": figures["verification"]["rate"],
        },
    }


def _dashboard(request: HttpRequest) -> TemplateResponse:
    """The staff dashboard: the request runs as `service_role`, so the figures cover everyone."""
    try:
        days = max(1, min(int(request.GET.get("days", 14)), 90))
    except ValueError:
        days = 14
    figures = dashboard_figures(days=days)
    context = {
        **admin.site.each_context(request),
        "title": "Pipeline dashboard",
        "figures": figures,
        "days": days,
        "chart_data": json.loads(json.dumps(_chart_data(figures), cls=DjangoJSONEncoder)),
        "open_alerts": list(Alert.objects.filter(state=AlertState.FIRING).order_by("severity", "-opened_at")),
        "recent_alerts": list(Alert.objects.filter(state=AlertState.RESOLVED).order_by("-resolved_at")[:5]),
    }
    return TemplateResponse(request, "admin/dashboard.html", context)


dashboard = admin.site.admin_view(_dashboard)


@require_GET
@broker_required
def portal_dashboard(request):
    """`/portal/`: the broker's own funnel and figures (the request runs in the broker's RLS context)."""
    figures = dashboard_figures(broker=request.broker, days=30)
    return render(request, "portal/dashboard.html", {"figures": figures, "nav": "dashboard"})
