"""A test-only URLconf: views that report what the request's database context lets them see."""

from django.db import connection
from django.http import JsonResponse, StreamingHttpResponse
from django.urls import path

from leads.models import Lead


def counts(request):
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM leads")
        raw = cursor.fetchone()[0]
        cursor.execute("SELECT current_user")
        role = cursor.fetchone()[0]
    return JsonResponse({"orm": Lead.objects.count(), "raw": raw, "role": role})


def stream(request):
    # The rows are read lazily, while the response is being sent: the middleware must read them under the role.
    return StreamingHttpResponse(f"{lead.pk}\n" for lead in Lead.objects.order_by("pk").iterator())


def sleep(request):
    # A statement that outlives the request's budget (DB_STATEMENT_TIMEOUTS["web"]).
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_sleep(%s)", [float(request.GET.get("seconds", "5"))])
    return JsonResponse({"slept": True})


def timeouts(request):
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('statement_timeout'), current_setting('lock_timeout')")
        statement, lock = cursor.fetchone()
    return JsonResponse({"statement_timeout": statement, "lock_timeout": lock})


urlpatterns = [
    path("probe/counts", counts),
    path("probe/stream", stream),
    path("probe/sleep", sleep),
    path("probe/timeouts", timeouts),
]
