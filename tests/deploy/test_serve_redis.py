"""`REDIS_URL=… make run` (scripts/serve.py): the web server and a task cluster on the Redis broker start, stay up,
and process a signed upload."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading

import pytest
import requests

from clients.upload_leads import request
from equity_connect.db import service_context
from pipeline.models import Upload
from tests.deploy.recipe import ROOT, direct_url, free_port
from tests.deploy.test_many_machines import upload_file
from tests.factories import PartnerKeyFactory
from tests.processes import app_env
from tests.waiting import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_make_run_with_redis_url_serves_and_processes_an_upload(redis_server, tmp_path):
    redis_server.flush()
    key = PartnerKeyFactory()
    port = free_port()
    env = app_env(tmp_path, PORT=str(port), Q_WORKERS="1", REDIS_URL=redis_server.url, DATABASE_URL=direct_url())
    serve = subprocess.Popen(
        [sys.executable, "scripts/serve.py"], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
    )
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(iter(serve.stdout.readline, "")), daemon=True).start()

    def web_answers() -> bool:
        try:
            return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code in (200, 503)
        except requests.ConnectionError:
            return False

    try:
        wait_for(web_answers, timeout=60, interval=0.2, message="the web server answers")
        status, answer = request(
            f"http://127.0.0.1:{port}/api/v1/uploads",
            method="POST",
            body=upload_file("serve", 0),
            secret=key.plain_secret,
            key_id=key.key_id,
        )
        assert status == 202, answer

        def done() -> bool:
            with service_context():
                return Upload.objects.filter(pk=answer["upload_id"], status="done").exists()

        wait_for(done, timeout=120, interval=0.2, message=lambda: "".join(lines))
        assert redis_server.client().keys("django_q:*")  # the cluster used Redis (its stats live there)
        assert serve.poll() is None
        assert len(re.findall(r"tasks started", "".join(lines))) == 1, "".join(lines)  # the cluster never died
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=60)
