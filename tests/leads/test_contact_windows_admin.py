"""Compliance edits the contact windows in the admin (leads/admin.py ContactWindowAdmin): a state's row narrowed
through the real change form, and the function follows at once; bad rows are refused with a message; every change
is on the event trail."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest
from django.urls import reverse

from equity_connect.db import service_context
from equity_connect.models import PipelineEvent
from leads.compliance.contact_windows import contact_window_open, next_contact_window
from leads.models import ContactWindow, Lead
from tests.factories import StaffUserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("contact_windows", "axes_clean")]

NEW_YORK = Lead(property_state="NY")
MONDAY_0830 = datetime(2026, 1, 12, 13, 30, tzinfo=UTC)  # 08:30 EST
SATURDAY_NOON = datetime(2026, 1, 17, 17, tzinfo=UTC)
FRIDAY_2030 = datetime(2026, 1, 17, 1, 30, tzinfo=UTC)  # Friday 16 January, 20:30 EST


@pytest.fixture
def staff(client):
    user = StaffUserFactory(email="compliance@staff.example")
    client.force_login(user)
    return user


def _row(state="NY", channel="sms") -> ContactWindow:
    with service_context():
        return ContactWindow.objects.get(state=state, channel=channel)


def _form(row: ContactWindow, **changes) -> dict:
    data = {
        "state": row.state,
        "channel": row.channel,
        "start": f"{row.start:%H:%M}",
        "end": f"{row.end:%H:%M}",
        "days": [str(day) for day in row.days],
        "note": row.note,
    }
    if row.closed_on_holidays:
        data["closed_on_holidays"] = "on"
    return {**data, **changes}


def _open(at: datetime, channel="sms") -> bool:
    with service_context():
        return contact_window_open(NEW_YORK, channel, at)


def test_compliance_narrows_a_states_window_and_the_function_follows(client, staff):
    row = _row()
    assert _open(MONDAY_0830) and _open(SATURDAY_NOON) and _open(FRIDAY_2030)
    changelist = client.get(reverse("admin:leads_contactwindow_changelist"), {"q": "NY"})
    assert changelist.status_code == 200 and "every day" in changelist.content.decode()
    url = reverse("admin:leads_contactwindow_change", args=[row.pk])
    assert client.get(url).status_code == 200

    narrower = _form(
        row,
        start="09:00",
        end="20:00",
        days=["0", "1", "2", "3", "4"],
        closed_on_holidays="on",
        note="NY GBL 399-z: weekdays 09:00-20:00 (checked by compliance)",
    )
    response = client.post(url, narrower)
    assert response.status_code == 302, response.content.decode()[:2000]

    assert not _open(MONDAY_0830) and not _open(SATURDAY_NOON) and not _open(FRIDAY_2030)
    assert _open(MONDAY_0830.replace(hour=14))  # 09:00 EST
    assert _open(MONDAY_0830, "phone")  # calls keep their own row
    # From Friday evening: not the weekend, not Martin Luther King Jr. Day (Monday the 19th): Tuesday 09:00 EST.
    with service_context():
        assert next_contact_window(NEW_YORK, "sms", FRIDAY_2030) == datetime(2026, 1, 20, 14, tzinfo=UTC)
        (event,) = PipelineEvent.objects.filter(event_type="contact_window_changed")
    assert event.event_data["state"] == "NY" and event.event_data["channel"] == "sms"
    assert event.event_data["user"] == staff.get_username()
    assert (
        event.event_data["before"]["days"] == [0, 1, 2, 3, 4, 5, 6] and event.event_data["before"]["start"] == "08:00"
    )
    assert event.event_data["after"] == {
        "start": "09:00",
        "end": "20:00",
        "days": [0, 1, 2, 3, 4],
        "closed_on_holidays": True,
        "note": "NY GBL 399-z: weekdays 09:00-20:00 (checked by compliance)",
    }
    changelist = client.get(reverse("admin:leads_contactwindow_changelist"), {"q": "NY"}).content.decode()
    assert "Mon, Tue, Wed, Thu, Fri" in changelist


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"start": "21:00", "end": "08:00"}, "The window must close after it opens"),
        ({"start": "09:00", "end": "09:00"}, "The window must close after it opens"),
        ({"days": []}, "This field is required"),
        ({"days": ["7"]}, "Select a valid choice"),
        ({"start": "25:00"}, "Enter a valid time"),
        ({"state": "ZZ"}, "Select a valid choice"),
    ],
)
def test_a_bad_row_is_refused_with_a_message(client, staff, changes, message):
    row = _row()
    response = client.post(reverse("admin:leads_contactwindow_change", args=[row.pk]), _form(row, **changes))
    assert response.status_code == 200 and message in response.content.decode()
    assert _row().start == time(8) and _row().end == time(21) and _row().days == [0, 1, 2, 3, 4, 5, 6]
    with service_context():
        assert not PipelineEvent.objects.filter(event_type="contact_window_changed").exists()


def test_one_row_per_state_and_channel(client, staff):
    response = client.post(reverse("admin:leads_contactwindow_add"), _form(_row(), note="a second NY row"))
    assert response.status_code == 200 and "already exists" in response.content.decode()


def test_an_email_window_added_and_a_row_deleted(client, staff):
    night = datetime(2026, 1, 15, 8, tzinfo=UTC)  # 03:00 in New York
    assert _open(night, "email")
    email_row = _form(_row(), channel="email", start="09:00", end="17:00", note="")
    assert client.post(reverse("admin:leads_contactwindow_add"), email_row).status_code == 302
    assert not _open(night, "email")
    with service_context():
        assert ContactWindow.objects.filter(state="NY", channel="email").count() == 1

    narrowed = _row()
    client.post(
        reverse("admin:leads_contactwindow_change", args=[narrowed.pk]), _form(narrowed, start="10:00", end="20:00")
    )
    assert not _open(MONDAY_0830.replace(hour=14))  # 09:00 EST
    response = client.post(reverse("admin:leads_contactwindow_delete", args=[narrowed.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert _open(MONDAY_0830.replace(hour=14))  # no row: the default 08:00 to 21:00 again
    with service_context():
        changes = list(PipelineEvent.objects.filter(event_type="contact_window_changed").order_by("id"))
    assert [
        (e.event_data["channel"], e.event_data["before"] is None, e.event_data["after"] is None) for e in changes
    ] == [
        ("email", True, False),
        ("sms", False, False),
        ("sms", False, True),
    ]
