"""Numbers and durations as a person reads them in the admin: `12,480`, `850 ms`, `4.2 s`, `3 min 05 s`."""

from __future__ import annotations


def number(value) -> str:
    """`12480` → `12,480`; None → `—`."""
    if value is None:
        return "—"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.2f}"
    return f"{int(value):,}"


def duration_ms(value) -> str:
    """Milliseconds as `850 ms`, `4.2 s`, `3 min 05 s` or `2 h 04 min`; None → `—`."""
    if value is None:
        return "—"
    ms = int(value)
    if ms < 1000:
        return f"{ms} ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    minutes, seconds_left = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {seconds_left:02d} s"
    hours, minutes_left = divmod(minutes, 60)
    return f"{hours} h {minutes_left:02d} min"


def percent(fraction) -> str:
    """`0.4236` → `42%`."""
    return f"{(fraction or 0) * 100:.0f}%"
