"""The ops dashboard's charts as SVG drawn on the server: no script, no library, nothing from a CDN.

    bar_chart(chart_id, title, points)        # vertical bars, each with its number above it; its own axis
    hbar_chart(chart_id, title, rows)         # horizontal bars (a funnel, a distribution), number beside each
    sparkline(values, label)                  # a small line for a table cell; gaps where a value is missing
    trend_chart(chart_id, title, points)      # weekly values as a line, the first week as a dashed baseline

Every chart is `role="img"` with a <title> and a <desc> that says what it shows in words (its text alternative);
the template puts the same figures in a table beside it. Values are escaped; colours come from the admin's CSS
variables so dark mode works.
"""

from __future__ import annotations

import math

from django.utils.html import escape, format_html, mark_safe

MIN_SLOT = 16  # px per bar: a number of up to two digits fits above it; longer ones are written upwards
BAR = "var(--primary, #79aec8)"
ACCENT = "var(--secondary, #417690)"
TEXT = "var(--body-fg, #333)"
QUIET = "var(--body-quiet-color, #666)"


def number(value) -> str:
    """12345 -> "12,345"; 0.1234 as a share is formatted by the caller (`percent`)."""
    if value is None:
        return "\u2013"  # an en dash: no value
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}"
    return f"{int(value):,}"


def percent(value: float | None) -> str:
    return "\u2013" if value is None else f"{value:.1%}"


def _frame(chart_id: str, title: str, desc: str, width: int, height: int, body: str) -> str:
    return format_html(
        '<svg id="{id}" class="ec-svg-chart" role="img" aria-labelledby="{id}-title {id}-desc" viewBox="0 0 {w} {h}"'
        ' width="100%" style="min-width: {min_width}px" preserveAspectRatio="xMinYMin meet"'
        ' xmlns="http://www.w3.org/2000/svg">'
        '<title id="{id}-title">{title}</title><desc id="{id}-desc">{desc}</desc>{body}</svg>',
        id=chart_id,
        min_width=width if width > 960 else 0,
        w=width,
        h=height,
        title=title,
        desc=desc,
        body=mark_safe(body),  # noqa: S308 - built below from escaped parts only
    )


def bar_chart(
    chart_id: str,
    title: str,
    points: list[tuple[str, float | None]],
    *,
    formatter=number,
    width: int = 460,
    height: int = 220,
    color: str = BAR,
    maximum: float | None = None,
) -> str:
    """Vertical bars on an axis of their own (0 to `maximum`, or to the largest value), each labelled with its
    value (a long series labels every few bars with a smaller number, so the numbers never overlap)."""
    # A long series gets wider (the page scrolls it sideways) rather than numbers too small to read.
    width = max(width, MIN_SLOT * len(points) + 16)
    longest = max((len(formatter(value)) for _, value in points), default=1)
    top, bottom, left = (22 if longest * 6 < MIN_SLOT else 8 + longest * 6), 34, 8
    plot = height - top - bottom
    largest = maximum or max((value or 0 for _, value in points), default=0) or 1
    slot = (width - left * 2) / max(len(points), 1)
    bar_width = max(slot * 0.7, 2)
    label_every = max(1, math.ceil(len(points) * 40 / width))  # a date label every 40 px at most
    upright = longest * 6 >= slot  # a number wider than its bar is written upwards
    parts = [
        f'<line x1="{left}" y1="{top + plot}" x2="{width - left}" y2="{top + plot}"'
        f' stroke="{QUIET}" stroke-width="1"/>'
    ]
    for index, (label, value) in enumerate(points):
        x = left + index * slot + (slot - bar_width) / 2
        size = (value or 0) / largest * plot
        y = top + plot - size
        parts.append(
            f'<rect class="ec-bar" x="{x:.1f}" y="{y:.1f}" width="{bar_width:.1f}" height="{size:.1f}" fill="{color}">'
            f"<title>{escape(label)}: {escape(formatter(value))}</title></rect>"
        )
        cx = x + bar_width / 2
        placement = (
            f'x="{cx + 3:.1f}" y="{y - 4:.1f}" transform="rotate(-90 {cx + 3:.1f} {y - 4:.1f})"'
            if upright
            else f'x="{cx:.1f}" y="{y - 4:.1f}" text-anchor="middle"'
        )
        parts.append(
            f'<text class="ec-bar-value" {placement} font-size="10" fill="{TEXT}">{escape(formatter(value))}</text>'
        )
        if index % label_every == 0:
            parts.append(
                f'<text x="{x + bar_width / 2:.1f}" y="{top + plot + 14}" text-anchor="middle" font-size="10"'
                f' fill="{QUIET}">{escape(label)}</text>'
            )
    desc = f"{title}: " + "; ".join(f"{label} {formatter(value)}" for label, value in points) + "."
    return _frame(chart_id, title, desc, width, height, "".join(parts))


def hbar_chart(
    chart_id: str,
    title: str,
    rows: list[tuple[str, float | None, str]],
    *,
    formatter=number,
    width: int = 460,
    color: str = ACCENT,
) -> str:
    """Horizontal bars: (label, value, note) per row; the value (and the note, e.g. "42% of the step before")
    is written at the end of each bar."""
    row_height, label_width = 26, 150
    height = row_height * len(rows) + 8
    largest = max((value or 0 for _, value, _ in rows), default=0) or 1
    room = width - label_width - 130
    parts = []
    for index, (label, value, note) in enumerate(rows):
        y = 4 + index * row_height
        size = max((value or 0) / largest * room, 1 if value else 0)
        text = formatter(value) + (f" ({note})" if note else "")
        parts.append(
            f'<text x="{label_width - 6}" y="{y + 16}" text-anchor="end" font-size="11" fill="{TEXT}">'
            f"{escape(label)}</text>"
            f'<rect class="ec-bar" x="{label_width}" y="{y + 3}" width="{size:.1f}" height="{row_height - 8}"'
            f' fill="{color}"><title>{escape(label)}: {escape(text)}</title></rect>'
            f'<text class="ec-bar-value" x="{label_width + size + 5:.1f}" y="{y + 16}" font-size="11"'
            f' fill="{TEXT}">{escape(text)}</text>'
        )
    desc = f"{title}: " + "; ".join(
        f"{label} {formatter(value)}" + (f" ({note})" if note else "") for label, value, note in rows
    )
    return _frame(chart_id, title, desc + ".", width, height, "".join(parts))


def sparkline(values: list[float | None], label: str, *, width: int = 100, height: int = 22) -> str:
    """A line over `values` (None leaves a gap), scaled to its own largest value; `label` is its alternative."""
    known = [value for value in values if value is not None]
    if not known:
        return format_html('<span class="ec-sparkline-empty" title="{}">no data</span>', label)
    largest = max(known) or 1
    step = width / max(len(values) - 1, 1)
    segments, current = [], []
    for index, value in enumerate(values):
        if value is None:
            if current:
                segments.append(current)
            current = []
            continue
        current.append(f"{index * step:.1f},{height - 2 - value / largest * (height - 4):.1f}")
    if current:
        segments.append(current)
    body = "".join(
        f'<polyline points="{" ".join(segment)}" fill="none" stroke="{ACCENT}" stroke-width="1.5"/>'
        if len(segment) > 1
        else f'<circle cx="{segment[0].split(",")[0]}" cy="{segment[0].split(",")[1]}" r="1.5" fill="{ACCENT}"/>'
        for segment in segments
    )
    return format_html(
        '<svg class="ec-sparkline" role="img" aria-label="{label}" width="{w}" height="{h}" viewBox="0 0 {w} {h}"'
        ' xmlns="http://www.w3.org/2000/svg"><title>{label}</title>{body}</svg>',
        label=label,
        w=width,
        h=height,
        body=mark_safe(body),  # noqa: S308 - numbers only
    )


def trend_chart(
    chart_id: str,
    title: str,
    points: list[tuple[str, float | None]],
    *,
    formatter=number,
    width: int = 460,
    height: int = 200,
    color: str = BAR,
) -> str:
    """A line through the weekly values with each value written at its point, and a dashed line at the first
    week's value: the trend against the first week. Missing weeks leave a gap."""
    top, bottom, left = 22, 34, 12
    plot = height - top - bottom
    values = [value for _, value in points if value is not None]
    largest = max(values, default=0) or 1
    step = (width - left * 2) / max(len(points) - 1, 1)

    def y_of(value: float) -> float:
        return top + plot - value / largest * plot

    parts = [f'<line x1="{left}" y1="{top + plot}" x2="{width - left}" y2="{top + plot}" stroke="{QUIET}"/>']
    first = points[0][1] if points else None
    if first is not None:
        parts.append(
            f'<line class="ec-baseline" x1="{left}" y1="{y_of(first):.1f}" x2="{width - left}" y2="{y_of(first):.1f}"'
            f' stroke="{QUIET}" stroke-dasharray="4 3"/>'
        )
    segment: list[str] = []
    for index, (label, value) in enumerate(points):
        x = left + index * step
        if value is None:
            if len(segment) > 1:
                parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{" ".join(segment)}"/>')
            segment = []
        else:
            y = y_of(value)
            segment.append(f"{x:.1f},{y:.1f}")
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}"/>')
            parts.append(
                f'<text class="ec-point-value" x="{x:.1f}" y="{y - 6:.1f}" text-anchor="middle" font-size="10"'
                f' fill="{TEXT}">{escape(formatter(value))}</text>'
            )
        parts.append(
            f'<text x="{x:.1f}" y="{top + plot + 14}" text-anchor="middle" font-size="10" fill="{QUIET}">'
            f"{escape(label)}</text>"
        )
    if len(segment) > 1:
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{" ".join(segment)}"/>')
    desc = (
        f"{title}: "
        + "; ".join(f"{label} {formatter(value)}" for label, value in points)
        + (f". The dashed line is the first week's value, {formatter(first)}." if first is not None else ".")
    )
    return _frame(chart_id, title, desc, width, height, "".join(parts))
