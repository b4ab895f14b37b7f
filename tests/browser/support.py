"""Shared by the browser tests: Debian's Chromium, its flags on this closed network, the screenshot folder."""

import os
from pathlib import Path

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "var" / "artifacts"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]


def wait_in_page(page, expression: str, timeout: float = 15.0):
    """Wait until `expression` is truthy in the page. Playwright's own wait_for_function polls with `eval` inside
    the page, which the Content-Security-Policy refuses: this polls from here instead."""
    from tests.waiting import wait_for

    return wait_for(lambda: page.evaluate(expression), timeout=timeout, interval=0.05, message=expression)
