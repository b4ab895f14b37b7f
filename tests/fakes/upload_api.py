"""Our own upload API played by a fake, for testing the partner's client (clients/upload_leads.py) alone.

    with FakeUploadApi() as api:
        api.script(503, 502, 202)                # the next answers, in order; then 202
        request(api.url + "/api/v1/uploads", …)
        assert len(api.requests) == 3            # every call it received (tests/fakes/http.py)

202 answers carry an accepted upload's body; other statuses an error body.
"""

from __future__ import annotations

from tests.fakes.http import RecordingServer

ACCEPTED = {"upload_id": "u1", "status": "received", "status_url": "x", "content_sha256": "y"}


class FakeUploadApi(RecordingServer):
    def __init__(self) -> None:
        super().__init__()
        self._script: list[int] = []

    def script(self, *statuses: int) -> None:
        with self._lock:
            self._script.extend(statuses)

    def answer(self, request: dict) -> tuple:
        with self._lock:
            status = self._script.pop(0) if self._script else 202
        return status, ACCEPTED if status == 202 else {"error": "nope"}
