"""The alert rules' thresholds: the environment's defaults (settings.ALERT_*), overridden by a value an operator
saved in the admin (`alert_thresholds`). A saved value wins; clearing it goes back to the environment's.

    threshold("ALERT_DLQ_DEPTH")                    # the value the rules use now
    thresholds_overview()                           # every threshold: default, saved, effective, last change
    alert_thresholds_save(values={...}, user=user)  # saves the changed ones, records each change

Every change is kept in `alert_threshold_changes` (who, when, old, new, the default then) and recorded as an
`alert_threshold_changed` event. Call inside a service context (staff request or job).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from equity_connect.events import record_event
from pipeline.models import AlertThreshold, AlertThresholdChange


class ThresholdError(ValueError):
    """A value an operator typed that cannot be a threshold (the message is safe to show)."""


@dataclass(frozen=True)
class ThresholdSpec:
    name: str
    label: str
    kind: str  # "rate" (a share, 0..1), "count" or "hours"/"days" (whole numbers)
    minimum: float
    maximum: float

    @property
    def whole(self) -> bool:
        return self.kind != "rate"


THRESHOLDS: tuple[ThresholdSpec, ...] = (
    ThresholdSpec("ALERT_HMAC_FAILURE_RATE", "HMAC failure rate above (critical)", "rate", 0, 1),
    ThresholdSpec("ALERT_DLQ_DEPTH", "DLQ depth above (critical)", "count", 0, 10_000_000),
    ThresholdSpec("ALERT_VERIFICATION_RATE", "Verification rate below (warning)", "rate", 0, 1),
    ThresholdSpec(
        "ALERT_VERIFICATION_MIN_LEADS", "Verification rate: fewest leads in the window", "count", 1, 10_000_000
    ),
    ThresholdSpec("ALERT_REPLY_RATE", "Reply rate below (warning)", "rate", 0, 1),
    ThresholdSpec("ALERT_DUPLICATE_UPLOAD_RATE", "Duplicate upload rate above (warning)", "rate", 0, 1),
    ThresholdSpec("ALERT_WINDOW_HOURS", "Window of the rate rules", "hours", 1, 24 * 31),
    ThresholdSpec("ALERT_REPLY_WINDOW_DAYS", "Window of the reply-rate rule", "days", 1, 365),
    ThresholdSpec("ALERT_MIN_SAMPLE", "Fewest requests or fed leads a rate needs", "count", 1, 10_000_000),
)
THRESHOLDS_BY_NAME = {spec.name: spec for spec in THRESHOLDS}


def environment_default(name: str) -> float:
    return float(getattr(settings, name))


def _typed(spec: ThresholdSpec, value: float) -> float | int:
    return int(value) if spec.whole else float(value)


def threshold(name: str):
    """The value the rules use now: the saved one if any, else the environment's default."""
    spec = THRESHOLDS_BY_NAME[name]
    saved = AlertThreshold.objects.filter(name=name).values_list("value", flat=True).first()
    return _typed(spec, environment_default(name) if saved is None else saved)


def threshold_parse(spec: ThresholdSpec, text: str) -> float | None:
    """An operator's input: empty means "the environment's default"; a rate may be typed as 0.8 or 80%."""
    text = (text or "").strip().replace(",", "")
    if not text:
        return None
    percent = text.endswith("%")
    try:
        value = float(text.rstrip("%").strip())
    except ValueError:
        raise ThresholdError(f"{spec.name}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise ThresholdError(f"{spec.name}: {text!r} is not a number")
    if spec.kind == "rate" and (percent or value > 1):
        value /= 100
    if spec.whole and value != int(value):
        raise ThresholdError(f"{spec.name}: must be a whole number")
    if not spec.minimum <= value <= spec.maximum:
        shown = (
            f"{spec.minimum:.0%} and {spec.maximum:.0%}"
            if spec.kind == "rate"
            else f"{spec.minimum:g} and {spec.maximum:g}"
        )
        raise ThresholdError(f"{spec.name}: must be between {shown}")
    return value


def thresholds_overview() -> list[dict]:
    """Every threshold with its environment default, saved value, effective value and last change."""
    saved = {row.name: row for row in AlertThreshold.objects.select_related("updated_by")}
    last_changes: dict[str, AlertThresholdChange] = {}
    for change in AlertThresholdChange.objects.select_related("changed_by").order_by("name", "-changed_at", "-id"):
        last_changes.setdefault(change.name, change)
    rows = []
    for spec in THRESHOLDS:
        default = environment_default(spec.name)
        row = saved.get(spec.name)
        rows.append(
            {
                "spec": spec,
                "default": _typed(spec, default),
                "saved": None if row is None else _typed(spec, row.value),
                "effective": _typed(spec, default if row is None else row.value),
                "last_change": last_changes.get(spec.name),
            }
        )
    return rows


def alert_thresholds_save(*, values: dict[str, str], user) -> list[AlertThresholdChange]:
    """Save the thresholds whose value changed (`values`: name -> text, empty = back to the default).

    Changes `alert_thresholds`; appends one `alert_threshold_changes` row and records one
    `alert_threshold_changed` event per changed threshold. Raises ThresholdError (nothing saved) on a bad value."""
    parsed = {}
    errors = []
    for name, text in values.items():
        spec = THRESHOLDS_BY_NAME.get(name)
        if spec is None:
            errors.append(f"{name}: not a threshold")
            continue
        try:
            parsed[name] = threshold_parse(spec, text)
        except ThresholdError as error:
            errors.append(str(error))
    if errors:
        raise ThresholdError("; ".join(errors))
    changes = []
    with transaction.atomic():
        current = {
            row.name: row.value for row in AlertThreshold.objects.select_for_update().filter(name__in=list(parsed))
        }
        for name, new in parsed.items():
            old = current.get(name)
            if old == new:
                continue
            if new is None:
                AlertThreshold.objects.filter(name=name).delete()
            else:
                AlertThreshold.objects.update_or_create(name=name, defaults={"value": new, "updated_by": user})
            change = AlertThresholdChange.objects.create(
                name=name,
                old_value=old,
                new_value=new,
                environment_default=environment_default(name),
                changed_by=user,
            )
            record_event(
                "alert_threshold_changed",
                data={
                    "name": name,
                    "old": old,
                    "new": new,
                    "default": environment_default(name),
                    "by": getattr(user, "get_username", lambda: None)(),
                },
            )
            changes.append(change)
    return changes
