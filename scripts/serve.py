"""`make run`'s last step: the web server and a django-q2 cluster side by side; Ctrl-C stops both.

PORT (default 8000) and HOST (default 127.0.0.1) choose the address. WEB_SERVER=gunicorn serves with
gunicorn as in production (its settings: gunicorn.conf.py, threaded workers) instead of Django's
development server.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


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
    web = web_command(python, host=host, port=port, server=os.environ.get("WEB_SERVER"))
    processes = {
        "web": subprocess.Popen(web, cwd=ROOT),
        "tasks": subprocess.Popen([python, "manage.py", "qcluster"], cwd=ROOT),
    }
    print(f"Equity Connect on http://{host}:{port}/  (admin: /admin/, portal: /portal/) — Ctrl-C stops", flush=True)
    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    exit_code = 0
    while not stopping:
        for name, process in processes.items():
            if process.poll() is not None:
                print(f"{name} exited with {process.returncode}; stopping", flush=True)
                exit_code = process.returncode or 1
                stopping = True
        time.sleep(0.5)
    for process in processes.values():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes.values():
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
