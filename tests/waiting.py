"""Wait for a condition, not for a length of time.

    wait_for(lambda: staged(upload_id) >= 4000, timeout=60, message="the worker staged nothing")

polls `predicate` until it returns something truthy and returns that value, or fails the test with
`message` when `timeout` seconds pass first. The interval is only how often the condition is checked,
never how long the test assumes something takes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class WaitTimeout(AssertionError):
    """The condition did not hold before the deadline (an AssertionError, so pytest shows it as a failure)."""


def wait_for(
    predicate: Callable[[], T],
    *,
    timeout: float = 10.0,
    interval: float = 0.01,
    message: str | Callable[[], str] = "",
) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            text = message() if callable(message) else message
            raise WaitTimeout(f"not true after {timeout:g} s: {text or getattr(predicate, '__name__', predicate)}")
        time.sleep(interval)
