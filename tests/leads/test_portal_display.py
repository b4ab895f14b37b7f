"""How the portal shows stored values (leads/display.py) and the timeline's words (leads/selectors.py
`lead_timeline`): phones, ALL-CAPS names and addresses, money, times in the broker's zone, every event detail."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.urls import reverse

from equity_connect.db import service_context
from equity_connect.events import record_event
from leads import display, selectors
from security.fields import seal_note
from tests.factories import BrokerFactory, LeadFactory

NEW_YORK = ZoneInfo("America/New_York")


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        ("+14539223220", "(453) 922-3220"),
        ("+442071838750", "+44 20 7183 8750"),
        ("", ""),
        (None, ""),
        ("not a number", "not a number"),
    ],
)
def test_phone_in_national_format(stored, shown):
    assert display.phone_national(stored) == shown


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        ("123 MAIN ST NE", "123 Main St NE"),
        ("MARTHA O'BRIEN", "Martha O'Brien"),
        ("1ST AVE APT 2B", "1st Ave Apt 2b"),
        ("MCDONALD", "McDonald"),
        ("PO BOX 12", "PO Box 12"),
        ("McDonald", "McDonald"),  # not all capitals: as the source wrote it
        ("de la Cruz", "de la Cruz"),
        ("12345", "12345"),
        ("", ""),
    ],
)
def test_title_case_only_when_shouting(stored, shown):
    assert display.title_if_shouting(stored) == shown


@pytest.mark.parametrize(
    ("stored", "shown"),
    [(350000, "$350,000"), ("1234567.40", "$1,234,567"), (0, "$0"), (None, ""), (-5000, "-$5,000")],
)
def test_money_with_thousands_separators(stored, shown):
    assert display.money(stored) == shown


def test_times_in_the_zone_and_relative():
    moment = datetime(2026, 3, 10, 18, 30, tzinfo=UTC)
    assert display.absolute_time(moment, NEW_YORK) == "Mar 10, 2026, 2:30 PM EDT"
    assert display.absolute_time("2026-01-10T18:30:00+00:00", NEW_YORK) == "Jan 10, 2026, 1:30 PM EST"
    assert display.absolute_time("garbage", NEW_YORK) == ""
    assert display.relative_time(moment - timedelta(hours=3), now=moment) == "3\xa0hours ago"
    assert display.relative_time(moment + timedelta(days=2, hours=1), now=moment) == "in 2\xa0days"
    assert display.relative_time(moment, now=moment) == "just now"


def test_an_unknown_zone_falls_back_to_the_default():
    assert display.broker_zone(SimpleNamespace(time_zone="Mars/Olympus")) == ZoneInfo("America/Los_Angeles")
    assert display.broker_zone(None) == ZoneInfo("America/Los_Angeles")


@pytest.mark.django_db
def test_timeline_reads_every_kind_of_detail(as_broker):
    broker = BrokerFactory(time_zone="America/New_York")
    lead = LeadFactory(assigned_broker=broker)
    with service_context():
        for event_type, data in [
            ("lead_outcome", {"outcome": "callback", "note": seal_note("call on Tuesday")}),
            ("appointment_booked", {"outcome": "appointment", "appointment_at": "2026-03-10T18:30:00+00:00"}),
            ("lead_do_not_contact", {"reason": seal_note("power of attorney asked")}),
            ("email_replied", {"reply_subject": "Re: home", "reply_snippet": "call me"}),
            ("consent_given", {"channels": ["email", "phone"]}),
            ("lead_suppression_changed", {"suppressed_channels": {"email": ["bounce"]}}),
        ]:
            record_event(event_type, lead_id=lead.pk, broker_id=broker.pk, data=data)
        # A detail stored as a JSON string (a document encoded twice) is still read.
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO pipeline_events (event_type, lead_id, broker_id, event_data) VALUES"
                " ('lead_outcome', %s, %s, to_jsonb(%s::text))",
                [lead.pk, broker.pk, json.dumps({"outcome": "no_answer", "note": seal_note("voicemail")})],
            )
    with as_broker(broker):
        timeline = selectors.lead_timeline(lead=lead, zone=display.broker_zone(broker))
    flat = " | ".join(" · ".join(entry.details) for entry in timeline)
    for text in (
        "Asked for a call back · call on Tuesday",
        "for Mar 10, 2026, 2:30 PM EDT",
        "power of attorney asked",
        "subject “Re: home” · “call me”",
        "for e-mail, phone calls",
        "never by e-mail (bounce)",
        "No answer · voicemail",
    ):
        assert text in flat, text


@pytest.mark.django_db
def test_the_portal_shows_values_for_display_and_stores_them_as_received(client_for):
    broker = BrokerFactory(time_zone="America/Chicago")
    lead = LeadFactory(
        assigned_broker=broker,
        first_name="MARTHA",
        last_name="KELLER",
        phone="+14539223220",
        property_address="123 MAIN ST NE",
        property_city="SAN DIEGO",
        property_value=350000,
        estimated_equity=1234567,
    )
    client = client_for(broker.user)
    for url in (reverse("portal:lead_list"), reverse("portal:lead_detail", kwargs={"lead_id": lead.pk})):
        page = client.get(url).content.decode()
        for text in ("Martha Keller", "(453) 922-3220", "123 Main St NE", "San Diego"):
            assert text in page, (url, text)
        assert ">+14539223220<" not in page and "MARTHA" not in page  # (the tel: link dials the stored E.164)
    page = client.get(reverse("portal:lead_detail", kwargs={"lead_id": lead.pk})).content.decode()
    assert "$350,000" in page and "$1,234,567" in page
    listed = client.get(reverse("portal:lead_list")).content.decode()
    assert " CST" in listed or " CDT" in listed  # created, in the broker's zone
    with service_context():
        lead.refresh_from_db()
    assert (lead.first_name, lead.phone, lead.property_address) == ("MARTHA", "+14539223220", "123 MAIN ST NE")
