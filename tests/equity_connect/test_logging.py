"""Log lines are structured and never carry a request's query string (consent tokens live there)."""

import logging

from django.test import RequestFactory

from equity_connect.logging import StructuredFormatter


def test_request_is_logged_as_method_and_path_only():
    request = RequestFactory().get("/consent", {"token": "secret-token-value"})
    record = logging.LogRecord("django.request", logging.WARNING, __file__, 1, "Not Found: %s", ("/consent",), None)
    record.request = request
    record.status_code = 404
    record.upload_id = "u-1"
    line = StructuredFormatter().format(record)
    assert "secret-token-value" not in line
    assert 'request="GET /consent"' in line
    assert "status_code=404" in line and 'upload_id="u-1"' in line
    assert 'msg="Not Found: /consent"' in line
