"""A test-only URLconf: the project's URLs and a view that fails (what a server error shows)."""

from django.urls import include, path


def boom(request):
    raise RuntimeError("something broke")


urlpatterns = [path("boom/", boom), path("", include("equity_connect.urls"))]
