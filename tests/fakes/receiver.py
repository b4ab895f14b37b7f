"""A webhook receiver on 127.0.0.1 (Slack, PagerDuty, any HTTP endpoint an alert is posted to).

    with WebhookReceiver() as receiver:
        settings.ALERT_WEBHOOK_URL = receiver.url + "/hooks/alerts"
        ...
        assert len(receiver.requests) == 1       # every call, whatever its method or path

It records EVERY request (tests/fakes/http.py) and answers 200 "ok", or the statuses given to
`receiver.script(503, …)` first, in order.
"""

from __future__ import annotations

from tests.fakes.http import RecordingServer


class WebhookReceiver(RecordingServer):
    def __init__(self) -> None:
        super().__init__()
        self._script: list[int] = []

    def script(self, *statuses: int) -> None:
        with self._lock:
            self._script.extend(statuses)

    def answer(self, request: dict) -> tuple:
        with self._lock:
            status = self._script.pop(0) if self._script else 200
        return status, b"ok" if status < 300 else b"error", {"Content-Type": "text/plain"}
