"""`X-Request-ID`: each request's id, taken from the proxy in front of us when it sent a well-formed one (so our log
lines join the proxy's), else made here; echoed in the response's `X-Request-ID` header and put on every log line
of the request (`request_id`, through equity_connect/logging.py's log context).

Well-formed: 1 to 128 characters of letters, digits and `-_.:+=/`, starting with a letter or digit — what proxies
and load balancers send (UUIDs, hex, `Root=1-…` trace ids) and nothing that could break a header or a log line.
Anything else is replaced, not trusted.
"""

from __future__ import annotations

import re
import uuid

from .logging import log_context

HEADER = "X-Request-ID"
_WELL_FORMED = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:+=/-]{0,127}")


def request_id_from(value: str | None) -> str:
    """The proxy's id if well-formed, else a new one (32 hex digits)."""
    if value and _WELL_FORMED.fullmatch(value):
        return value
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """The first middleware: every later middleware's and view's log lines carry the id."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.request_id = request_id_from(request.headers.get(HEADER))
        with log_context(request_id=request.request_id):
            response = self.get_response(request)
        response[HEADER] = request.request_id
        return response
