"""The feeder's calendar: which Los Angeles dates are business days (Monday to Friday, not a holiday of the
`business_holidays` table), and the writes ops make to that table from the admin.

US federal holidays (5 U.S.C. 6103) on the weekday they are observed (a Saturday's on the Friday before, a Sunday's
on the Monday after) are seeded for 2020-2040 by pipeline migration 0018 with `us_federal_holidays`; ops add, change
or remove days (a company holiday, a later year) in the admin (*Holidays*). Each change records `holiday_changed`.
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction

from equity_connect.events import record_event
from pipeline.models import BusinessHoliday


def _nth_weekday(year: int, month: int, weekday: int, nth: int) -> dt.date:
    first = dt.date(year, month, 1)
    return first + dt.timedelta(days=(weekday - first.weekday()) % 7 + 7 * (nth - 1))


def _last_weekday(year: int, month: int, weekday: int) -> dt.date:
    last = (dt.date(year, month, 28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)
    return last - dt.timedelta(days=(last.weekday() - weekday) % 7)


def _observed(day: dt.date) -> dt.date:
    return day + dt.timedelta(days={5: -1, 6: 1}.get(day.weekday(), 0))


def us_federal_holidays(year: int) -> list[tuple[dt.date, str]]:
    """The US federal holidays whose observed day falls in `year`, as (observed day, name), sorted. New Year's Day
    of `year + 1` on a Saturday is observed on 31 December of `year`; of `year` on a Saturday, in the year before."""
    fixed = [
        (1, 1, "New Year's Day"),
        (6, 19, "Juneteenth National Independence Day"),
        (7, 4, "Independence Day"),
        (11, 11, "Veterans Day"),
        (12, 25, "Christmas Day"),
    ]
    days = []
    for source_year in (year, year + 1):
        for month, day, name in fixed:
            actual = dt.date(source_year, month, day)
            observed = _observed(actual)
            if observed.year == year:
                days.append((observed, name if observed == actual else f"{name} (observed)"))
    days += [
        (_nth_weekday(year, 1, 0, 3), "Birthday of Martin Luther King, Jr."),
        (_nth_weekday(year, 2, 0, 3), "Washington's Birthday"),
        (_last_weekday(year, 5, 0), "Memorial Day"),
        (_nth_weekday(year, 9, 0, 1), "Labor Day"),
        (_nth_weekday(year, 10, 0, 2), "Columbus Day"),
        (_nth_weekday(year, 11, 3, 4), "Thanksgiving Day"),
    ]
    return sorted(days)


def holiday_on(day: dt.date) -> BusinessHoliday | None:
    """The holiday on `day`, or None (needs a database context that may read `business_holidays`)."""
    return BusinessHoliday.objects.filter(day=day).first()


def is_business_day(day: dt.date) -> bool:
    """Monday to Friday, and not a holiday of the calendar."""
    return day.weekday() < 5 and holiday_on(day) is None


def holiday_save(*, holiday: BusinessHoliday, user=None) -> BusinessHoliday:
    """Add or change a holiday. Records `holiday_changed` with the day and name before and after."""
    with transaction.atomic():
        before = BusinessHoliday.objects.filter(pk=holiday.pk).values("day", "name").first() if holiday.pk else None
        holiday.save()
        record_event(
            "holiday_changed",
            data={
                "action": "changed" if before else "added",
                "before": {"day": before["day"].isoformat(), "name": before["name"]} if before else None,
                "after": {"day": holiday.day.isoformat(), "name": holiday.name},
                "by": _who(user),
            },
        )
    return holiday


def holiday_delete(*, holiday: BusinessHoliday, user=None) -> None:
    """Remove a holiday: the feeder feeds on that day again. Records `holiday_changed`."""
    with transaction.atomic():
        record_event(
            "holiday_changed",
            data={
                "action": "removed",
                "before": {"day": holiday.day.isoformat(), "name": holiday.name},
                "after": None,
                "by": _who(user),
            },
        )
        holiday.delete()


def _who(user) -> str:
    return getattr(user, "email", None) or getattr(user, "username", None) or ""
