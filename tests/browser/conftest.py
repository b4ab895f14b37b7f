"""Browser tests drive Debian's Chromium with Playwright (headless; a browser is never downloaded)."""

from pathlib import Path

import pytest
from django.db import connections

from .support import ARGS, ARTIFACTS, CHROMIUM


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects: `-m 'not slow'` and `-m 'not browser'` see these marks
def pytest_collection_modifyitems(config, items):
    missing = pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (python3 scripts/bootstrap.py browser)"
    )
    for item in items:
        if "tests/browser/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.slow)  # a browser start and a live server each: seconds per test
            item.add_marker(missing)


@pytest.fixture
def browser(monkeypatch):
    # Playwright's sync API runs an event loop in this thread; monkeypatch restores the variable afterwards
    # (it must not leak into later tests' subprocesses, where `check --deploy` refuses it).
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield browser
        browser.close()
        # While Playwright's loop runs, Django's connections are context-local: close the ones opened by the
        # test body, or they outlive the test (and block dropping the test database).
        connections.close_all()
