"""Monitoring entry points: /healthz, /metrics (anonymous), /admin/dashboard/ (staff) and the broker's
dashboard at /portal/. Thin: each calls one module."""

from __future__ import annotations

import csv
import io

from django.contrib import admin
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.template.response import TemplateResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from equity_connect.spreadsheets import spreadsheet_safe
from leads.views.portal import broker_required
from security.client_ip import client_ip
from security.middleware import without_db_context

from .dashboard import dashboard_figures
from .dashboard_page import dashboard_page, dashboard_range
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


def _dashboard(request: HttpRequest) -> TemplateResponse:
    """The staff dashboard: the request runs as `service_role`, so the figures cover everyone."""
    start, end, error = dashboard_range(request.GET)
    context = {
        **admin.site.each_context(request),
        "title": "Pipeline dashboard",
        "range_error": error,
        **dashboard_page(start=start, end=end),
    }
    return TemplateResponse(request, "admin/dashboard.html", context, status=400 if error else 200)


def _dashboard_export(request: HttpRequest, table: str) -> HttpResponse:
    """One of the dashboard's tables as CSV, for the same date range (`?from=&to=` or `?days=`)."""
    start, end, error = dashboard_range(request.GET)
    if error:
        return HttpResponse(error + "\n", status=400, content_type="text/plain; charset=utf-8")
    tables = dashboard_page(start=start, end=end)["tables"]
    if table not in tables:
        raise Http404("No such table.")
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(tables[table].columns)
    for row in tables[table].raw:
        writer.writerow([spreadsheet_safe(cell) for cell in row])
    response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="dashboard-{table}-{start}-{end}.csv"'
    return response


dashboard = admin.site.admin_view(require_GET(_dashboard))
dashboard_export = admin.site.admin_view(require_GET(_dashboard_export))


@require_GET
@broker_required
def portal_dashboard(request):
    """`/portal/`: the broker's own funnel and figures (the request runs in the broker's RLS context)."""
    figures = dashboard_figures(broker=request.broker, days=30)
    return render(request, "portal/dashboard.html", {"figures": figures, "nav": "dashboard"})
