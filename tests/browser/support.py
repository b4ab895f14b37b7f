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


def admin_log_in(browser, live_server, staff, *, width: int = 1400, height: int = 950):
    """A new browser context logged in to the admin as `staff` (password "correct-horse-battery", the factories'):
    (context, page, errors), where `errors` collects the page's script errors."""
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.set_default_timeout(15_000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("input[name=username]", staff.email)
    page.fill("input[name=password]", "correct-horse-battery")
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")
    return context, page, errors


def result_rows(page) -> int:
    """How many rows an admin changelist shows."""
    return page.locator("#result_list tbody tr").count()
