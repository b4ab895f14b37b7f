"""`make run` (scripts/serve.py): a task cluster that dies is started again, and the web server keeps serving."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import requests

from tests.processes import app_env
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_task_cluster_that_dies_is_started_again_and_the_web_keeps_serving(tmp_path):
    port = free_port()
    env = app_env(tmp_path, PORT=str(port), Q_WORKERS="1")
    serve = subprocess.Popen(
        [sys.executable, "scripts/serve.py"], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
    )
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(iter(serve.stdout.readline, "")), daemon=True).start()

    def cluster_pids() -> list[int]:
        return [int(pid) for pid in re.findall(r"tasks started \(pid (\d+)\)", "".join(lines))]

    def web_answers() -> bool:
        try:
            return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code in (200, 503)
        except requests.ConnectionError:
            return False

    try:
        [first] = wait_for(cluster_pids, timeout=30, message="the first cluster started")
        wait_for(web_answers, timeout=60, interval=0.2, message="the web server answers")
        os.killpg(first, signal.SIGKILL)  # the cluster and its workers die at once

        pids = wait_for(
            lambda: cluster_pids() if len(cluster_pids()) == 2 else None,
            timeout=30,
            message=lambda: "a second cluster started:\n" + "".join(lines),
        )
        assert serve.poll() is None and web_answers()
        assert not alive(first) and alive(pids[1])
        assert "tasks exited with -9; starting it again in 1 s" in "".join(lines)
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=60)
    assert not any(alive(pid) for pid in cluster_pids())  # Ctrl-C (or TERM) stops everything it started


def test_consent_links_point_where_make_run_serves(tmp_path):
    """`PORT=9123 make run` hands out consent links that open its own consent form (no CONSENT_FORM_URL set)."""
    from tests.factories import LeadFactory

    lead = LeadFactory()
    env = app_env(tmp_path, PORT="9123", Q_WORKERS="1")
    env.pop("CONSENT_FORM_URL", None)
    env.pop("HOST", None)
    made = subprocess.run(
        [sys.executable, "manage.py", "consent_link", str(lead.pk)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    [link] = re.findall(r"https?://\S+/consent\?token=\S+", made.stdout)
    assert link.startswith("http://127.0.0.1:9123/consent?token=")
    serve = subprocess.Popen([sys.executable, "scripts/serve.py"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    try:

        def form() -> requests.Response | None:
            try:
                return requests.get(link, timeout=5)
            except requests.ConnectionError:
                return None

        page = wait_for(form, timeout=60, interval=0.2, message="the web server answers on port 9123")
        assert page.status_code == 200
        assert "<h1>May we contact you?</h1>" in page.text and 'id="problem"' not in page.text
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=60)
