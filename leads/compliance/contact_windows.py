"""Contact windows: whether a lead may be contacted on a channel (e-mail, SMS, phone) at a moment, and when next.

Federal law (the TCPA's quiet hours, 47 CFR 64.1200(c)(1)) forbids telephone solicitation, calls and texts
alike, before 08:00 and after 21:00 at the called party's location, and some states are stricter (fewer hours,
no Sundays or holidays). The rules per state and channel are the `contact_windows` table (ContactWindow),
which compliance keeps current in the admin; this module applies them:

- the lead's state is the mailing address's when it differs from the property's (an absentee owner is reached
  where they live), else the property's;
- every time zone of that state must allow the moment (zones.py): a state that spans several zones allows
  only the hours all of them allow, computed with zoneinfo for the actual date, daylight-saving time included;
- a lead whose state is unknown could be in any of them, so every state's rule must allow the moment in every
  one of its zones (the most restrictive intersection over all US zones, territories included);
- a state without a row for the channel: phone and SMS get DEFAULT_WINDOW (08:00 to 21:00 every day), so a
  missing row never means "any time"; e-mail has no window.

Local times that a daylight-saving change skips or repeats are read the cautious way: the later instant for an
opening, the earlier for a closing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

from django.db import transaction

from equity_connect.db import AUTHENTICATED, SERVICE_ROLE, current_context
from equity_connect.events import record_event

from ..models import ContactChannel, ContactWindow
from .zones import STATE_ZONES, zones_of

CHANNELS = tuple(ContactChannel.values)
EVERY_DAY = frozenset(range(7))
SEARCH_SPAN = timedelta(days=7)  # the next opening is looked for a week at a time …
SEARCH_LIMIT = timedelta(days=400)  # … for at most this long


class NoContactWindow(Exception):
    """The rules never allow contact (for a lead of unknown state, no moment every state allows)."""


@dataclass(frozen=True)
class Window:
    """Local hours [start, end) on `days` (date.weekday(): 0 is Monday), not on federal holidays if so chosen."""

    start: time
    end: time
    days: frozenset[int] = EVERY_DAY
    closed_on_holidays: bool = False

    def allows_day(self, day: date) -> bool:
        return day.weekday() in self.days and not (self.closed_on_holidays and day in federal_holidays(day.year))


def window_of(row: ContactWindow) -> Window:
    return Window(row.start, row.end, frozenset(row.days), row.closed_on_holidays)


DEFAULT_WINDOW = Window(time(8), time(21))
DEFAULT_WINDOWS: dict[str, Window | None] = {"email": None, "sms": DEFAULT_WINDOW, "phone": DEFAULT_WINDOW}


class ContactWindows:
    """One channel's rules by state, read once: a caller that checks many leads loads it once and passes it."""

    def __init__(self, channel: str, by_state: dict[str, Window]):
        if channel not in CHANNELS:
            raise ValueError(f"unknown contact channel {channel!r}")
        self.channel = channel
        self.by_state = by_state

    @classmethod
    def load(cls, channel: str) -> ContactWindows:
        """The table's rows for `channel`. Needs a staff, job or broker context: anywhere else row-level
        security would hide the rows and every state would silently get the default."""
        context = current_context()
        if context is None or context.role not in (SERVICE_ROLE, AUTHENTICATED):
            raise RuntimeError("contact windows are read in a service or broker database context")
        return cls(channel, {row.state: window_of(row) for row in ContactWindow.objects.filter(channel=channel)})

    def window(self, state: str) -> Window | None:
        """The state's rule (None: no window on this channel)."""
        return self.by_state.get(state, DEFAULT_WINDOWS[self.channel])


def _state_code(value: str | None) -> str | None:
    code = (value or "").strip().upper()
    return code if code in STATE_ZONES else None


def contact_state(lead) -> str | None:
    """The state whose rules apply to the lead: the mailing state when it differs from the property's (an
    absentee owner), else the property's; None when neither is a state we know."""
    property_state = _state_code(lead.property_state)
    mailing_state = _state_code(getattr(lead, "mailing_state", None))
    if mailing_state and mailing_state != property_state:
        return mailing_state
    return property_state


def contact_zone(lead) -> ZoneInfo:
    """The zone to show the lead's local time in: their state's first zone, UTC when the state is unknown."""
    state = contact_state(lead)
    return zones_of(state)[0] if state else ZoneInfo("UTC")


def local_time_text(lead, moment: datetime) -> str:
    """`moment` in the lead's local time, for people: `Tue 1 Dec 08:00 EST`."""
    local = moment.astimezone(contact_zone(lead))
    return f"{local:%a} {local.day} {local:%b %H:%M %Z}"


def _constraints(lead, channel: str, windows: ContactWindows | None) -> list[tuple[ZoneInfo, Window]]:
    """Every (zone, rule) that must allow a contact, without repeats."""
    if windows is None:
        windows = ContactWindows.load(channel)
    elif windows.channel != channel:
        raise ValueError(f"contact windows of {windows.channel!r} given for {channel!r}")
    state = contact_state(lead)
    states = (state,) if state else tuple(STATE_ZONES)
    pairs = ((zone, windows.window(code)) for code in states for zone in zones_of(code))
    return list(dict.fromkeys((zone, window) for zone, window in pairs if window is not None))


def _utc(day: date, at: time, zone: ZoneInfo, *, later: bool) -> datetime:
    """`day` at local time `at` in `zone` as UTC; of the two readings of a skipped or repeated local time,
    the later or the earlier instant."""
    readings = [datetime.combine(day, at.replace(fold=fold), tzinfo=zone).astimezone(UTC) for fold in (0, 1)]
    return max(readings) if later else min(readings)


def _allowed(zone: ZoneInfo, window: Window, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """The UTC intervals [open, close) inside [start, end) in which `window` allows contact in `zone`."""
    intervals = []
    day = start.astimezone(zone).date() - timedelta(days=1)
    last = end.astimezone(zone).date()
    while day <= last:
        if window.allows_day(day):
            opens = max(_utc(day, window.start, zone, later=True), start)
            closes = min(_utc(day, window.end, zone, later=False), end)
            if opens < closes:
                intervals.append((opens, closes))
        day += timedelta(days=1)
    return intervals


def _intersect(a: list[tuple[datetime, datetime]], b: list[tuple[datetime, datetime]]):
    """The intersection of two sorted lists of disjoint intervals."""
    out, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if lo < hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def _open_within(constraints: Iterable[tuple[ZoneInfo, Window]], start: datetime, end: datetime):
    allowed = [(start, end)]
    for zone, window in constraints:
        allowed = _intersect(allowed, _allowed(zone, window, start, end))
        if not allowed:
            break
    return allowed


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("a contact window is checked at an aware datetime")
    return moment.astimezone(UTC)


def contact_window_open(lead, channel: str, at: datetime, *, windows: ContactWindows | None = None) -> bool:
    """Whether the lead may be contacted on `channel` ("email", "sms" or "phone") at the moment `at`."""
    at = _aware(at)
    constraints = _constraints(lead, channel, windows)
    return bool(_open_within(constraints, at, at + timedelta(microseconds=1)))


def next_contact_window(lead, channel: str, after: datetime, *, windows: ContactWindows | None = None) -> datetime:
    """The first moment at or after `after` when the lead may be contacted on `channel` (`after` itself, in
    UTC, when the window is open). Raises NoContactWindow when no moment within SEARCH_LIMIT is allowed."""
    after = _aware(after)
    constraints = _constraints(lead, channel, windows)
    if not constraints:
        return after
    start = after
    while start < after + SEARCH_LIMIT:
        end = start + SEARCH_SPAN
        allowed = _open_within(constraints, start, end)
        if allowed:
            return allowed[0][0]
        start = end
    raise NoContactWindow(f"The contact windows never allow {channel} contact with this lead: check the table.")


def _described(row) -> dict | None:
    if row is None:
        return None
    return {
        "start": f"{row.start:%H:%M}",
        "end": f"{row.end:%H:%M}",
        "days": sorted(row.days),
        "closed_on_holidays": row.closed_on_holidays,
        "note": row.note,
    }


def _changed(row, before, after, user) -> None:
    record_event(
        "contact_window_changed",
        data={
            "state": row.state,
            "channel": row.channel,
            "before": before,
            "after": after,
            "user": user.get_username() if user is not None else None,
        },
    )


def contact_window_save(*, row, user=None):
    """Save a row of the contact-window table (the admin's add or edit; needs a service context): validated
    (start before end, at least one day), then `contact_window_changed` records the rule before and after."""
    with transaction.atomic():
        row.full_clean()
        before = _described(ContactWindow.objects.filter(pk=row.pk).first()) if row.pk else None
        row.save()
        _changed(row, before, _described(row), user)
    return row


def contact_window_delete(*, row, user=None) -> None:
    """Delete a row (the state then gets the channel's default: DEFAULT_WINDOWS); records the change."""
    with transaction.atomic():
        before = _described(row)
        row.delete()
        _changed(row, before, None, user)


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))


def _last_weekday(year: int, month: int, weekday: int) -> date:
    last = date(year, month + 1, 1) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


@cache
def federal_holidays(year: int) -> frozenset[date]:
    """The federal holidays of `year` (5 U.S.C. 6103): each date itself and the weekday it is observed on (a
    Saturday's on the Friday before, a Sunday's on the Monday after), including 31 December when the next New
    Year's Day is a Saturday."""
    fixed = [date(year, 1, 1), date(year, 6, 19), date(year, 7, 4), date(year, 11, 11), date(year, 12, 25)]
    moving = [
        _nth_weekday(year, 1, 0, 3),  # Martin Luther King Jr. Day
        _nth_weekday(year, 2, 0, 3),  # Washington's Birthday
        _last_weekday(year, 5, 0),  # Memorial Day
        _nth_weekday(year, 9, 0, 1),  # Labor Day
        _nth_weekday(year, 10, 0, 2),  # Columbus Day
        _nth_weekday(year, 11, 3, 4),  # Thanksgiving Day
    ]
    observed = {day + timedelta(days={5: -1, 6: 1}.get(day.weekday(), 0)) for day in fixed}
    if date(year + 1, 1, 1).weekday() == 5:
        observed.add(date(year, 12, 31))
    return frozenset({*fixed, *moving, *observed} - {date(year - 1, 12, 31)})
