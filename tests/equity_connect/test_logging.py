"""Log lines: key=value text or one JSON object per line (LOG_FORMAT), with the context's fields (request_id, job,
job_run_id, upload_id, partner, duration_ms) as keys of their own; never a request's query string (consent tokens
live there). X-Request-ID: the proxy's when well-formed, else ours; echoed and on every line of the request."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys

import pytest
from django.test import RequestFactory

from equity_connect.db import service_context
from equity_connect.logging import JsonFormatter, LogContextFilter, StructuredFormatter, log_context
from equity_connect.models import PipelineEvent
from equity_connect.request_id import request_id_from
from pipeline.jobs import JobReport, job_run
from tests.equity_connect.test_settings import PRODUCTION_SECRETS, ROOT
from tests.factories import PartnerFactory


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
    document = json.loads(JsonFormatter().format(record))
    assert document["request"] == "GET /consent" and "secret-token-value" not in json.dumps(document)


@pytest.fixture
def json_lines():
    """Every line the root logger writes while the test runs, through the production handler's formatter and
    filter, parsed: a line that is not one JSON object fails the test."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(LogContextFilter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)

    def lines() -> list[dict]:
        return [json.loads(line) for line in stream.getvalue().splitlines()]

    yield lines
    root.removeHandler(handler)
    root.setLevel(old_level)


def test_context_fields_are_keys_of_their_own_not_part_of_the_message(json_lines):
    logger = logging.getLogger("probe")
    with log_context(upload_id="u-1", partner="Acme Data"), log_context(job="cleanup", job_run_id="r-1"):
        logger.info("step done", extra={"duration_ms": 12})
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("step failed", extra={"partner": "given in extra wins"})
    logger.info("outside")
    done, failed, outside = json_lines()
    assert done["msg"] == "step done" and done["level"] == "info" and done["logger"] == "probe"
    assert {key: done[key] for key in ("upload_id", "partner", "job", "job_run_id", "duration_ms")} == {
        "upload_id": "u-1",
        "partner": "Acme Data",
        "job": "cleanup",
        "job_run_id": "r-1",
        "duration_ms": 12,
    }
    assert done["ts"].endswith("Z")
    assert failed["partner"] == "given in extra wins" and "ValueError: boom" in failed["exc"]
    assert "upload_id" not in outside and "job" not in outside


@pytest.mark.django_db
def test_a_jobs_lines_carry_the_job_its_run_id_and_the_duration(json_lines):
    def work():
        logging.getLogger("pipeline.probe").info("working")
        return JobReport(message="did it")

    job_run("probe", work)

    working, finished = [line for line in json_lines() if line["logger"].startswith("pipeline.")]
    with service_context():
        event = PipelineEvent.objects.filter(event_type="job_run").latest("id")
    run_id = event.event_data["job_run_id"]
    assert working["msg"] == "working" and (working["job"], working["job_run_id"]) == ("probe", run_id)
    assert finished["msg"] == "job probe: success" and finished["job_run_id"] == run_id
    assert finished["duration_ms"] == event.duration_ms and finished["status"] == "success"


@pytest.mark.django_db
def test_an_uploads_lines_carry_the_upload_and_its_partner(json_lines, settings, tmp_path):
    from tests.pipeline.ingest_helpers import ingest

    settings.MEDIA_ROOT = tmp_path
    partner = PartnerFactory(name="Acme Data")
    upload = ingest(b"mak,first_name,last_name\nMAK-LOG-1,Ann,Lee\n", partner=partner)

    [done] = [line for line in json_lines() if line["msg"] == "upload done"]
    # The partner's id: the ingestion runs as pipeline_writer, which reads no partner names (the admin has them).
    assert done["upload_id"] == str(upload.id) and done["partner"] == str(partner.id)
    assert done["rows_total"] == 1 and isinstance(done["duration_ms"], int)
    assert str(upload.id) not in done["msg"]


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("3f2a9c1e-8b7d-4e6f-a5b4-c3d2e1f0a9b8", True),
        ("Root=1-67891233-abcdef012345678912345678", True),
        ("a" * 128, True),
        ("a" * 129, False),
        ("bad id", False),
        ("x\r\nSet-Cookie: a=b", False),
        ("-leading-dash", False),
        ("", False),
        (None, False),
    ],
)
def test_a_request_id_is_kept_only_when_well_formed(sent, kept):
    result = request_id_from(sent)
    if kept:
        assert result == sent
    else:
        assert result != sent and len(result) == 32 and int(result, 16) >= 0


@pytest.mark.django_db
def test_the_request_id_is_echoed_and_on_every_line_of_the_request(client, json_lines):
    # An unsigned upload: the intake logs its refusal inside the request, Django logs the 400 after it.
    response = client.post(
        "/api/v1/uploads", data=b"mak\nA1\n", content_type="text/csv", HTTP_X_REQUEST_ID="proxy-id-42"
    )
    assert response.status_code == 400 and response["X-Request-ID"] == "proxy-id-42"
    lines = json_lines()
    assert {line["msg"] for line in lines} >= {"upload rejected", "Bad Request: /api/v1/uploads"}
    assert lines and all(line.get("request_id") == "proxy-id-42" for line in lines)

    made = client.get("/healthz", HTTP_X_REQUEST_ID="not a valid id")
    assert made["X-Request-ID"] != "not a valid id" and len(made["X-Request-ID"]) == 32
    assert client.get("/healthz")["X-Request-ID"] != made["X-Request-ID"]


def _log_under(module: str, env: dict) -> str:
    code = (
        "import django, logging; django.setup(); "
        "logging.getLogger('probe').warning('hello', extra={'upload_id': 'u-1', 'duration_ms': 5})"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**{k: v for k, v in __import__("os").environ.items() if k != "LOG_FORMAT"}, **env},
    )
    assert result.returncode == 0, result.stderr
    return result.stderr.strip().splitlines()[-1]


def test_production_logs_json_by_default_and_text_on_request():
    production = {**PRODUCTION_SECRETS, "DJANGO_SETTINGS_MODULE": "equity_connect.settings.production"}
    document = json.loads(_log_under("production", production))
    assert document["msg"] == "hello" and document["upload_id"] == "u-1" and document["duration_ms"] == 5
    text = _log_under("production", {**production, "LOG_FORMAT": "text"})
    assert 'msg="hello"' in text and 'upload_id="u-1"' in text
    local = _log_under("local", {"DJANGO_SETTINGS_MODULE": "equity_connect.settings.local"})
    assert local.startswith("ts=") and "duration_ms=5" in local
    refused = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={
            **__import__("os").environ,
            "DJANGO_SETTINGS_MODULE": "equity_connect.settings.local",
            "LOG_FORMAT": "xml",
        },
    )
    assert refused.returncode != 0 and "LOG_FORMAT must be one of text, json" in refused.stderr
