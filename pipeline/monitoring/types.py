"""What an alert rule is: a name, a severity, a title and a check that observes one thing at an instant."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

CRITICAL = "critical"
WARNING = "warning"


@dataclass(frozen=True)
class Observation:
    breached: bool
    value: float | None
    threshold: float
    message: str


@dataclass(frozen=True)
class Rule:
    name: str
    severity: str
    title: str
    check: Callable[[dt.datetime], Observation]
