"""Structured log lines: `ts=… level=… logger=… msg="…" key=value …`.

Context keys (upload_id, lead_id, job_run_id, …) come from `extra={...}`. Never log secrets, signatures
or request bodies: the formatter prints what it is given.
"""

from __future__ import annotations

import json
import logging
import time

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class StructuredFormatter(logging.Formatter):
    converter = time.gmtime  # timestamps in UTC, whatever the process time zone

    def format(self, record: logging.LogRecord) -> str:
        parts = [
            f"ts={self.formatTime(record, '%Y-%m-%dT%H:%M:%S')}Z",
            f"level={record.levelname.lower()}",
            f"logger={record.name}",
            f"msg={json.dumps(record.getMessage())}",
        ]
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                if key == "request":
                    # method and path only: query strings carry tokens (consent links) and must not be logged
                    value = f"{getattr(value, 'method', '')} {getattr(value, 'path', '')}".strip()
                parts.append(f"{key}={json.dumps(value, default=str)}")
        if record.exc_info:
            parts.append(f"exc={json.dumps(self.formatException(record.exc_info))}")
        return " ".join(parts)
