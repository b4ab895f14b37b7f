"""`make run`'s last step: the web server and a django-q2 cluster side by side; Ctrl-C stops both.

PORT (default 8000) and HOST (default 127.0.0.1) choose the address. WEB_SERVER=gunicorn serves with
gunicorn as in production (its settings: gunicorn.conf.py, threaded workers) instead of Django's
development server.

A task cluster that dies is started again (after 1 s, doubling to 30 s while it keeps dying within a minute
of its start), and the web server keeps serving meanwhile; the uploads its death left unfinished are picked up
by the new cluster's sweeper. Only the web server's own exit stops everything.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESTART_DELAY_MAX = 30.0
STABLE_AFTER_SECONDS = 60.0  # a cluster that ran this long was healthy: the next restart is quick again


def _start(command: list[str]) -> subprocess.Popen:
    # Its own process group: when the cluster dies, its workers go with it before the next one starts.
    return subprocess.Popen(command, cwd=ROOT, start_new_session=True)


def _stop_group(process: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


def web_command(python: str, *, host: str, port: str, server: str | None) -> list[str]:
    """The web server's command line (run from the repository's root)."""
    if server == "gunicorn":
        return [
            python,
            "-m",
            "gunicorn",
            "equity_connect.wsgi",
            "-c",
            str(ROOT / "gunicorn.conf.py"),
            "-b",
            f"{host}:{port}",
        ]
    return [python, "manage.py", "runserver", f"{host}:{port}", "--noreload"]


def main() -> int:
    python = sys.executable
    host = os.environ.get("HOST", "127.0.0.1")
    port = os.environ.get("PORT", "8000")
    tasks_command = [python, "manage.py", "qcluster"]
    web = _start(web_command(python, host=host, port=port, server=os.environ.get("WEB_SERVER")))
    tasks = _start(tasks_command)
    tasks_started, delay, restart_at = time.monotonic(), 1.0, None
    print(f"tasks started (pid {tasks.pid})", flush=True)
    print(f"Equity Connect on http://{host}:{port}/  (admin: /admin/, portal: /portal/) — Ctrl-C stops", flush=True)
    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    exit_code = 0
    while not stopping:
        if web.poll() is not None:
            print(f"web exited with {web.returncode}; stopping", flush=True)
            exit_code = web.returncode or 1
            break
        if restart_at is None and tasks.poll() is not None:
            _stop_group(tasks, signal.SIGKILL)  # workers the dead cluster left behind
            if time.monotonic() - tasks_started >= STABLE_AFTER_SECONDS:
                delay = 1.0
            print(f"tasks exited with {tasks.returncode}; starting it again in {delay:.0f} s", flush=True)
            restart_at = time.monotonic() + delay
            delay = min(delay * 2, RESTART_DELAY_MAX)
        if restart_at is not None and time.monotonic() >= restart_at:
            tasks, tasks_started, restart_at = _start(tasks_command), time.monotonic(), None
            print(f"tasks started (pid {tasks.pid})", flush=True)
        time.sleep(0.5)
    for process in (web, tasks):
        if process.poll() is None:
            _stop_group(process, signal.SIGTERM)
    for process in (web, tasks):
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            _stop_group(process, signal.SIGKILL)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
