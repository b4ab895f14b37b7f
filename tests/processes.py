"""Run the application in processes of their own against the test database (workers, clusters, servers)."""

from __future__ import annotations

import os
import urllib.parse

from django.conf import settings
from django.db import connection


def app_env(media_root, **extra: str) -> dict[str, str]:
    """The environment of a `manage.py` process that uses this test run's database and media folder."""
    url = urllib.parse.urlsplit(settings.DATABASE_URL)
    return {
        **os.environ,
        "DATABASE_URL": urllib.parse.urlunsplit(url._replace(path="/" + connection.settings_dict["NAME"])),
        "DJANGO_SETTINGS_MODULE": "equity_connect.settings.test",
        "MEDIA_ROOT": str(media_root),
        **extra,
    }
