"""Log lines: `key=value` text (`LOG_FORMAT=text`, the default outside production) or one JSON object per line
(`LOG_FORMAT=json`, production's default), for a log aggregator.

Fields come from `extra={...}` and from the log context: `log_context(upload_id=…, partner=…)` (a context
variable, so it follows the code of one request, job or upload across functions and threads' own contexts) puts
its fields on every line logged inside it, through `LogContextFilter` on the handler. The request's id
(`request_id`, equity_connect/request_id.py), a job's `job` and `job_run_id` (pipeline/jobs.py) and an upload's
`upload_id` and `partner` (pipeline/ingest/services.py) arrive this way, as fields, never inside the message.

Never log secrets, signatures or request bodies: the formatters print what they are given, except a `request`
field, which is reduced to its method and path (query strings carry tokens: consent links).
"""

from __future__ import annotations

import contextvars
import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}
_CONTEXT: contextvars.ContextVar[dict] = contextvars.ContextVar("equity_connect_log_context", default={})  # noqa: B039  (never mutated: replaced)

LOG_FORMATS = ("text", "json")


@contextmanager
def log_context(**fields) -> Iterator[None]:
    """Every line logged inside the block carries `fields` (None values are left out); blocks nest, the inner
    value of a field winning, and the outer fields come back when the block ends."""
    token = _CONTEXT.set({**_CONTEXT.get(), **{key: value for key, value in fields.items() if value is not None}})
    try:
        yield
    finally:
        _CONTEXT.reset(token)


def current_log_context() -> dict:
    return dict(_CONTEXT.get())


class LogContextFilter(logging.Filter):
    """Adds the log context's fields to each record (a field given in `extra` wins). Django logs a request's
    4xx/5xx line after the middleware has left the request's context, so a record carrying the request takes its
    id from the request itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _CONTEXT.get().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        if not hasattr(record, "request_id"):
            request_id = getattr(getattr(record, "request", None), "request_id", None)
            if request_id:
                record.request_id = request_id
        return True


def _fields(record: logging.LogRecord) -> Iterator[tuple[str, object]]:
    for key, value in record.__dict__.items():
        if key in _STANDARD or key.startswith("_"):
            continue
        if key == "request":
            # method and path only: query strings carry tokens (consent links) and must not be logged
            value = f"{getattr(value, 'method', '')} {getattr(value, 'path', '')}".strip()
        yield key, value


class StructuredFormatter(logging.Formatter):
    """`ts=… level=… logger=… msg="…" key=value …` (LOG_FORMAT=text)."""

    converter = time.gmtime  # timestamps in UTC, whatever the process time zone

    def format(self, record: logging.LogRecord) -> str:
        parts = [
            f"ts={self.formatTime(record, '%Y-%m-%dT%H:%M:%S')}Z",
            f"level={record.levelname.lower()}",
            f"logger={record.name}",
            f"msg={json.dumps(record.getMessage())}",
        ]
        parts += [f"{key}={json.dumps(value, default=str)}" for key, value in _fields(record)]
        if record.exc_info:
            parts.append(f"exc={json.dumps(self.formatException(record.exc_info))}")
        return " ".join(parts)


class JsonFormatter(logging.Formatter):
    """One JSON object per line (LOG_FORMAT=json): `ts` (UTC, milliseconds), `level`, `logger`, `msg`, then every
    field of the record and its context as a key of its own, and `exc` for an exception's traceback. A field
    named like one of the four keys is kept under `field_<name>` rather than overwriting it."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in _fields(record):
            document[f"field_{key}" if key in document else key] = value
        if record.exc_info:
            document["exc"] = self.formatException(record.exc_info)
        elif record.stack_info:
            document["stack"] = self.formatStack(record.stack_info)
        return json.dumps(document, default=str, ensure_ascii=False, separators=(",", ":"))


def logging_config(*, log_format: str, level: str, q_level: str) -> dict:
    """The LOGGING setting: one stderr handler with the chosen formatter and the context filter."""
    if log_format not in LOG_FORMATS:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(f"LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}")
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"log_context": {"()": "equity_connect.logging.LogContextFilter"}},
        "formatters": {
            "text": {"()": "equity_connect.logging.StructuredFormatter"},
            "json": {"()": "equity_connect.logging.JsonFormatter"},
        },
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": log_format, "filters": ["log_context"]}
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "django.db.backends": {"level": "WARNING"},
            "axes": {"level": "WARNING"},
            "django_q": {"level": q_level},
        },
    }
