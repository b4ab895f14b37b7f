"""Contact windows (leads/compliance/contact_windows.py): whether a lead may be contacted on a channel at a moment,
and when next, at fixed moments: single-zone states (Hawaii, Arizona, New York), states that span two zones (Texas,
Florida), an absentee owner, a lead of unknown state, daylight-saving changes, and the rules of the table (days,
holidays, e-mail). Moments are UTC; the comments give the local times."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest

from equity_connect.db import service_context
from leads.compliance.contact_windows import (
    ContactWindows,
    NoContactWindow,
    Window,
    contact_state,
    contact_window_open,
    federal_holidays,
    local_time_text,
    next_contact_window,
)
from leads.compliance.zones import STATE_ZONES, STATES, zones_of
from leads.models import ContactWindow, Lead

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("contact_windows")]


def utc(*parts) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def lead(state: str | None, mailing: str | None = None) -> Lead:
    return Lead(property_state=state, mailing_state=mailing)


def is_open(who: Lead, at: datetime, channel: str = "sms") -> bool:
    with service_context():
        return contact_window_open(who, channel, at)


def opening(who: Lead, after: datetime, channel: str = "sms") -> datetime:
    with service_context():
        return next_contact_window(who, channel, after)


def edit(state: str, channel: str, **values) -> None:
    with service_context():
        ContactWindow.objects.update_or_create(state=state, channel=channel, defaults=values)


@pytest.mark.parametrize("channel", ["sms", "phone"])
@pytest.mark.parametrize(
    ("state", "at", "open_", "next_"),
    [
        # Hawaii (UTC-10, no daylight-saving time): 08:00 to 21:00 HST is 18:00 to 07:00 UTC, winter and summer.
        ("HI", utc(2026, 7, 15, 17, 59), False, utc(2026, 7, 15, 18)),  # 07:59 HST
        ("HI", utc(2026, 7, 15, 18), True, utc(2026, 7, 15, 18)),  # 08:00 HST
        ("HI", utc(2026, 1, 16, 6, 59), True, utc(2026, 1, 16, 6, 59)),  # 20:59 HST
        ("HI", utc(2026, 1, 16, 7), False, utc(2026, 1, 16, 18)),  # 21:00 HST: closed until 08:00
        # Arizona keeps MST (UTC-7) all year: 08:00 is 15:00 UTC in January and in July.
        ("AZ", utc(2026, 1, 15, 14, 59), False, utc(2026, 1, 15, 15)),
        ("AZ", utc(2026, 7, 15, 14, 30), False, utc(2026, 7, 15, 15)),  # 07:30 in Phoenix, 08:30 in Denver
        ("CO", utc(2026, 7, 15, 14, 30), True, utc(2026, 7, 15, 14, 30)),
        ("AZ", utc(2026, 7, 16, 3, 59), True, utc(2026, 7, 16, 3, 59)),  # 20:59 MST
        # New York: EST (UTC-5) in January, EDT (UTC-4) in July.
        ("NY", utc(2026, 1, 15, 12, 59), False, utc(2026, 1, 15, 13)),  # 07:59 EST
        ("NY", utc(2026, 1, 15, 13), True, utc(2026, 1, 15, 13)),
        ("NY", utc(2026, 7, 15, 12), True, utc(2026, 7, 15, 12)),  # 08:00 EDT
        ("NY", utc(2026, 1, 16, 2), False, utc(2026, 1, 16, 13)),  # 21:00 EST: until 08:00 the next morning
    ],
)
def test_single_zone_states_at_fixed_moments(state, at, open_, next_, channel):
    assert is_open(lead(state), at, channel) is open_
    assert opening(lead(state), at, channel) == next_


def test_texas_allows_only_the_hours_both_el_paso_and_houston_allow():
    texas = lead("TX")
    # 08:30 in Houston (CST) is 07:30 in El Paso (MST): closed until 08:00 El Paso, 09:00 Houston.
    assert not is_open(texas, utc(2026, 1, 15, 14, 30))
    assert is_open(lead("OK"), utc(2026, 1, 15, 14, 30))  # a Central-only state is open
    assert opening(texas, utc(2026, 1, 15, 14, 30)) == utc(2026, 1, 15, 15)
    # 20:30 in El Paso is 21:30 in Houston: closed; 20:30 in Houston (19:30 in El Paso) is open.
    assert is_open(texas, utc(2026, 1, 16, 2, 30))
    assert not is_open(texas, utc(2026, 1, 16, 3, 30))
    assert is_open(lead("NM"), utc(2026, 1, 16, 3, 30))  # a Mountain-only state is open
    assert opening(texas, utc(2026, 1, 16, 3, 30)) == utc(2026, 1, 16, 15)


def test_florida_allows_only_the_hours_both_the_panhandle_and_miami_allow():
    florida = lead("FL")
    # 08:30 in Miami (EST) is 07:30 in Pensacola (CST); 20:30 in Pensacola is 21:30 in Miami.
    assert not is_open(florida, utc(2026, 1, 15, 13, 30)) and is_open(lead("GA"), utc(2026, 1, 15, 13, 30))
    assert opening(florida, utc(2026, 1, 15, 13, 30)) == utc(2026, 1, 15, 14)
    assert is_open(florida, utc(2026, 1, 16, 1, 59))
    assert not is_open(florida, utc(2026, 1, 16, 2, 30)) and is_open(lead("AL"), utc(2026, 1, 16, 2, 30))


def test_an_absentee_owner_is_reached_in_the_mailing_addresss_state():
    absentee = lead("NY", mailing="CA")
    assert contact_state(absentee) == "CA"
    # 21:30 in New York is 18:30 in California: the owner lives in California.
    assert not is_open(lead("NY"), utc(2026, 1, 16, 2, 30))
    assert is_open(absentee, utc(2026, 1, 16, 2, 30))
    # 10:00 in New York is 07:00 in California: closed until 08:00 Pacific.
    assert is_open(lead("NY"), utc(2026, 1, 15, 15))
    assert not is_open(absentee, utc(2026, 1, 15, 15))
    assert opening(absentee, utc(2026, 1, 15, 15)) == utc(2026, 1, 15, 16)
    # The same state, or no mailing state: the property's; no property state: the mailing one.
    assert contact_state(lead("NY", mailing="NY")) == contact_state(lead("NY")) == "NY"
    assert contact_state(lead(None, mailing="ca")) == "CA"
    assert contact_state(lead("NY", mailing="ZZ")) == "NY"  # not a state: ignored


def test_a_lead_of_unknown_state_gets_the_hours_every_us_zone_allows():
    unknown = lead(None)
    assert contact_state(unknown) is None and contact_state(lead("XX")) is None
    # Guam's 08:00 (22:00 UTC) to Puerto Rico's 21:00 (01:00 UTC): three hours, winter or summer.
    for day in (utc(2026, 1, 15), utc(2026, 7, 15)):
        assert opening(unknown, day.replace(hour=12)) == day.replace(hour=22)
        assert is_open(unknown, day.replace(hour=23, minute=30))
    assert is_open(unknown, utc(2026, 1, 16, 0, 59)) and not is_open(unknown, utc(2026, 1, 16, 1))
    # A state's narrower row narrows it too (the lead could live there).
    edit("HI", "sms", start=time(9), end=time(21))  # 09:00 HST is 19:00 UTC: no change
    edit("PR", "sms", start=time(8), end=time(20, 30))  # 20:30 AST is 00:30 UTC
    assert not is_open(unknown, utc(2026, 1, 16, 0, 45)) and is_open(unknown, utc(2026, 1, 16, 0, 15))


def test_spring_forward_moves_the_utc_opening_an_hour_earlier():
    new_york, texas, arizona = lead("NY"), lead("TX"), lead("AZ")
    # Saturday 7 March 2026, 22:00 EST; clocks go forward at 02:00 on Sunday 8 March.
    assert opening(new_york, utc(2026, 3, 7, 3)) == utc(2026, 3, 7, 13)  # 08:00 EST
    assert opening(new_york, utc(2026, 3, 8, 3)) == utc(2026, 3, 8, 12)  # 08:00 EDT
    assert opening(texas, utc(2026, 3, 8, 3)) == utc(2026, 3, 8, 14)  # 08:00 MDT in El Paso, 09:00 CDT in Houston
    # Phoenix does not change: 22:00 MST on either Saturday, 08:00 MST (15:00 UTC) on either Sunday.
    assert opening(arizona, utc(2026, 3, 1, 5)) == utc(2026, 3, 1, 15)
    assert opening(arizona, utc(2026, 3, 8, 5)) == utc(2026, 3, 8, 15)
    assert is_open(new_york, utc(2026, 3, 9, 0, 59)) and not is_open(new_york, utc(2026, 3, 9, 1))  # 21:00 EDT


def test_fall_back_moves_the_utc_opening_an_hour_later():
    new_york, hawaii = lead("NY"), lead("HI")
    # Saturday 31 October 2026 closes at 21:00 EDT (01:00 UTC); Sunday 1 November opens at 08:00 EST (13:00 UTC).
    assert is_open(new_york, utc(2026, 11, 1, 0, 59)) and not is_open(new_york, utc(2026, 11, 1, 1))
    assert opening(new_york, utc(2026, 11, 1, 1)) == utc(2026, 11, 1, 13)
    assert opening(new_york, utc(2026, 10, 31, 1)) == utc(2026, 10, 31, 12)  # the day before: 08:00 EDT
    assert opening(hawaii, utc(2026, 11, 1, 7)) == utc(2026, 11, 1, 18)  # Honolulu does not change


def test_local_times_a_daylight_saving_change_skips_or_repeats_are_read_the_cautious_way():
    # A window 02:30 to 04:00 on the day 02:00 to 03:00 does not exist: it opens at 03:30 PDT, an hour late
    # rather than an hour early.
    skipped = ContactWindows("sms", {"CA": Window(time(2, 30), time(4))})
    with service_context():
        assert next_contact_window(lead("CA"), "sms", utc(2026, 3, 8, 8), windows=skipped) == utc(2026, 3, 8, 10, 30)
    # A window 00:30 to 01:30 on the day 01:00 to 02:00 happens twice: it closes at the first 01:30 (PDT).
    repeated = ContactWindows("sms", {"CA": Window(time(0, 30), time(1, 30))})
    assert contact_window_open(lead("CA"), "sms", utc(2026, 11, 1, 8, 29), windows=repeated)
    assert not contact_window_open(lead("CA"), "sms", utc(2026, 11, 1, 8, 30), windows=repeated)


def test_a_state_row_may_drop_sundays_and_federal_holidays():
    louisiana = lead("LA")
    edit("LA", "phone", start=time(8), end=time(20), days=[0, 1, 2, 3, 4, 5], closed_on_holidays=True)
    # Sunday 18 January 2026, noon CST: closed; Monday the 19th is Martin Luther King Jr. Day: closed;
    # it opens on Tuesday at 08:00 CST. Texts keep their own (default) row.
    assert not is_open(louisiana, utc(2026, 1, 18, 18), "phone") and is_open(louisiana, utc(2026, 1, 18, 18), "sms")
    assert opening(louisiana, utc(2026, 1, 18, 18), "phone") == utc(2026, 1, 20, 14)
    assert is_open(louisiana, utc(2026, 1, 21, 1, 59), "phone") and not is_open(
        louisiana, utc(2026, 1, 21, 2), "phone"
    )


def test_email_has_no_window_unless_a_row_gives_it_one():
    at_night = utc(2026, 1, 15, 8)  # 03:00 in New York
    assert is_open(lead("NY"), at_night, "email") and opening(lead("NY"), at_night, "email") == at_night
    assert is_open(lead(None), at_night, "email")
    edit("NY", "email", start=time(9), end=time(17), days=[0, 1, 2, 3, 4])
    assert not is_open(lead("NY"), at_night, "email") and opening(lead("NY"), at_night, "email") == utc(
        2026, 1, 15, 14
    )
    assert not is_open(lead(None), at_night, "email")  # the lead could be in New York
    assert is_open(lead("CA"), at_night, "email")


def test_a_state_without_a_row_gets_the_default_for_calls_and_texts():
    with service_context():
        ContactWindow.objects.filter(state="NY").delete()
    assert not is_open(lead("NY"), utc(2026, 1, 15, 12, 59)) and is_open(lead("NY"), utc(2026, 1, 15, 13))
    assert is_open(lead("NY"), utc(2026, 1, 15, 8), "email")


def test_windows_that_never_overlap_leave_a_lead_of_unknown_state_no_moment():
    apart = ContactWindows("sms", {"HI": Window(time(8), time(9)), "ME": Window(time(20), time(21))})
    with service_context():
        assert not contact_window_open(lead(None), "sms", utc(2026, 1, 15, 18, 30), windows=apart)
        with pytest.raises(NoContactWindow):
            next_contact_window(lead(None), "sms", utc(2026, 1, 15), windows=apart)
        assert contact_window_open(lead("HI"), "sms", utc(2026, 1, 15, 18, 30), windows=apart)


def test_bad_calls_are_refused():
    with service_context():
        with pytest.raises(ValueError, match="channel"):
            contact_window_open(lead("NY"), "fax", utc(2026, 1, 15))
        with pytest.raises(ValueError, match="aware"):
            contact_window_open(lead("NY"), "sms", datetime(2026, 1, 15, 12))
    with pytest.raises(RuntimeError, match="context"):  # row-level security would hide the rows
        ContactWindows.load("sms")


def test_federal_holidays_and_the_days_they_are_observed():
    assert sorted(federal_holidays(2026)) == [
        date(2026, 1, 1),
        date(2026, 1, 19),
        date(2026, 2, 16),
        date(2026, 5, 25),
        date(2026, 6, 19),
        date(2026, 7, 3),  # 4 July is a Saturday
        date(2026, 7, 4),
        date(2026, 9, 7),
        date(2026, 10, 12),
        date(2026, 11, 11),
        date(2026, 11, 26),
        date(2026, 12, 25),
    ]
    assert {date(2021, 12, 31), date(2021, 12, 24)} <= federal_holidays(2021)  # 1 January 2022 was a Saturday
    assert date(2022, 12, 26) in federal_holidays(2022) and date(2021, 12, 31) not in federal_holidays(2022)


def test_every_state_and_dc_has_its_zones():
    assert len(STATES) == 51 and {"DC", "HI", "AK"} <= set(STATES)
    assert all(zones_of(state) for state in STATE_ZONES)
    two_zones = {state for state, zones in STATE_ZONES.items() if len(zones) > 1}
    assert {"TX", "FL", "IN", "KY", "TN", "MI", "ND", "SD", "NE", "KS", "ID", "OR", "AK"} <= two_zones
    assert STATE_ZONES["AZ"] == ("America/Phoenix",) and STATE_ZONES["HI"] == ("Pacific/Honolulu",)


def test_local_time_text_is_in_the_leads_zone():
    assert local_time_text(lead("NY"), utc(2026, 1, 15, 13)) == "Thu 15 Jan 08:00 EST"
    assert local_time_text(lead("NY", mailing="CA"), utc(2026, 1, 15, 16)) == "Thu 15 Jan 08:00 PST"
    assert local_time_text(lead(None), utc(2026, 1, 15, 22)) == "Thu 15 Jan 22:00 UTC"
