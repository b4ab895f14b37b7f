"""Opens the database context for each request: the second wall behind scoped querysets.

- staff: `service_role` (the admin sees every row);
- a broker: `authenticated` with their broker id as `auth.uid()`;
- anyone else: no context, so the login role's default deny applies (public views that need data,
  such as the consent form or the upload API, open a narrow context in their service after checking
  the token or signature);
- anyone but staff in the admin: no context either (the admin shows them its login page, from Django's
  own tables).

The user and their broker are loaded before the role is switched. Views that write Django's own auth
or session tables (login, logout, password change) are marked with `@without_db_context`. A streaming
response is drained into a temporary file inside the transaction, so its rows are read under the
request's role, not after it ends.
"""

from __future__ import annotations

import logging
import tempfile

from django.db import OperationalError
from django.http import HttpResponse
from django.urls import Resolver404, resolve

from equity_connect.db import (
    AUTHENTICATED,
    LOCK_NOT_AVAILABLE,
    QUERY_CANCELED,
    SERVICE_ROLE,
    db_context,
    service_context,
)

from .models import Broker

_STREAM_SPOOL_BYTES = 8 * 1024 * 1024
logger = logging.getLogger(__name__)


def without_db_context(view):
    """Mark a view that must run as the bare login role (it touches only Django's own tables)."""
    view.without_db_context = True
    return view


def broker_id_for_user(user) -> str | None:
    with service_context():
        return Broker.objects.active().for_user(user).values_list("id", flat=True).first()


def request_db_context(request) -> tuple[str, str | None] | None:
    """The (role, broker_id) a request runs with, or None for no context."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not user.is_active:
        return None
    if user.is_staff:
        return SERVICE_ROLE, None
    broker_id = broker_id_for_user(user)
    if broker_id is None:
        return None
    return AUTHENTICATED, broker_id


class DatabaseContextMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        match = self._match(request)
        if self._exempt(match):
            return self.get_response(request)
        context = request_db_context(request)
        if context is not None and context[0] != SERVICE_ROLE and match is not None and match.app_name == "admin":
            # The admin lets only staff in. Anyone else gets its login page, which reads Django's auth tables:
            # rights of the login role, not of a broker's context.
            context = None
        request.db_context = context
        if context is None:
            return self.get_response(request)
        role, broker_id = context
        request.broker_id = broker_id
        with db_context(role, broker_id=broker_id, budget="web"):
            response = self.get_response(request)
            if getattr(response, "streaming", False):
                response.streaming_content = self._drain(response.streaming_content)
        return response

    @staticmethod
    def process_exception(request, exception):
        """A statement cut short by the request's budget (statement_timeout, lock_timeout): a 503 page that
        says so, not a 500 — the request was cancelled, not stuck, and may be tried again."""
        if isinstance(exception, OperationalError) and _sqlstate(exception) in (QUERY_CANCELED, LOCK_NOT_AVAILABLE):
            logger.warning("request cancelled by its database time budget", extra={"request": request})
            return HttpResponse(
                "This took too long and was stopped. Please try again, or narrow what you asked for.\n",
                status=503,
                content_type="text/plain; charset=utf-8",
                headers={"Retry-After": "5"},
            )
        return None

    @staticmethod
    def _match(request):
        try:
            return resolve(request.path_info)
        except Resolver404:
            return None

    @staticmethod
    def _exempt(match) -> bool:
        if match is None:
            return False
        func = match.func
        return getattr(func, "without_db_context", False) or getattr(
            getattr(func, "view_class", None), "without_db_context", False
        )

    @staticmethod
    def _drain(chunks):
        spool = tempfile.SpooledTemporaryFile(max_size=_STREAM_SPOOL_BYTES)  # noqa: SIM115  (read after return)
        for chunk in chunks:
            spool.write(chunk if isinstance(chunk, bytes) else chunk.encode())
        spool.seek(0)
        return iter(lambda: spool.read(64 * 1024), b"")


def _sqlstate(error: Exception) -> str | None:
    return getattr(error.__cause__, "sqlstate", None)
