"""The broker's dashboard at `/portal/` (DESIGN §11): the same figures module as the staff dashboard, scoped to
the broker. It lives in `pipeline` because the figures do (imports point down: pipeline -> leads)."""

from django.shortcuts import render
from django.views.decorators.http import require_GET

from leads.views.portal import broker_required
from pipeline.dashboard import dashboard_figures


@require_GET
@broker_required
def dashboard(request):
    figures = dashboard_figures(broker=request.broker, days=30)
    return render(request, "portal/dashboard.html", {"figures": figures, "nav": "dashboard"})
