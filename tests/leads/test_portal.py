"""The broker portal, through the real middleware (test client): scoping, list, export, detail, actions."""

from __future__ import annotations

import csv
import io
import uuid

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from equity_connect.db import service_context
from equity_connect.models import PipelineEvent
from leads.display import phone_national
from leads.models import BrokerPortalSettings, CampaignStatus, ConsentToken, Lead
from leads.selectors import SORTS
from security.fields import open_notes
from tests.factories import LeadFactory, PipelineEventFactory, VerificationCodeMapFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("axes_clean")]

OWN, OTHER = "own", "other"


def _lead_url(name, lead):
    return reverse(f"portal:{name}", kwargs={"lead_id": lead.pk})


# --- Who may see what: one table (url, method, who, whose lead, expected status) ---------------------
ACCESS = [
    # anonymous: to the login page
    ("lead_list", "get", "anon", None, 302),
    ("dashboard", "get", "anon", None, 302),
    ("lead_export", "get", "anon", None, 302),
    ("lead_detail", "get", "anon", OWN, 302),
    # staff: to the admin
    ("lead_list", "get", "staff", None, 302),
    ("lead_detail", "get", "staff", OWN, 302),
    # a login without a broker: 403 page
    ("lead_list", "get", "nobroker", None, 403),
    ("dashboard", "get", "nobroker", None, 403),
    ("lead_detail", "get", "nobroker", OWN, 403),
    # a broker: their own pages
    ("dashboard", "get", "broker", None, 200),
    ("lead_list", "get", "broker", None, 200),
    ("lead_export", "get", "broker", None, 200),
    ("lead_detail", "get", "broker", OWN, 200),
    ("lead_queue", "post", "broker", OWN, 302),
    ("lead_outcome", "post", "broker", OWN, 302),
    ("lead_do_not_contact", "post", "broker", OWN, 302),
    ("lead_consent_link", "post", "broker", OWN, 302),
    # another broker's lead: 404 for every view and action, never 403
    ("lead_detail", "get", "broker", OTHER, 404),
    ("lead_queue", "post", "broker", OTHER, 404),
    ("lead_outcome", "post", "broker", OTHER, 404),
    ("lead_do_not_contact", "post", "broker", OTHER, 404),
    ("lead_consent_link", "post", "broker", OTHER, 404),
    # actions are POST only
    ("lead_queue", "get", "broker", OWN, 405),
    ("lead_consent_link", "get", "broker", OWN, 405),
    # the contact edit, notifications, settings and the column chooser (issue 15)
    ("lead_contact_edit", "post", "anon", OWN, 302),
    ("notifications", "get", "anon", None, 302),
    ("settings", "get", "anon", None, 302),
    ("list_columns", "post", "anon", None, 302),
    ("lead_contact_edit", "post", "nobroker", OWN, 403),
    ("notifications", "get", "nobroker", None, 403),
    ("settings", "post", "nobroker", None, 403),
    ("list_columns", "post", "nobroker", None, 403),
    ("lead_contact_edit", "post", "broker", OWN, 302),
    ("notifications", "get", "broker", None, 200),
    ("settings", "get", "broker", None, 200),
    ("settings", "post", "broker", None, 302),
    ("list_columns", "post", "broker", None, 302),
    ("lead_contact_edit", "post", "broker", OTHER, 404),
    ("lead_contact_edit", "get", "broker", OWN, 405),
    ("list_columns", "get", "broker", None, 405),
]

POST_DATA = {
    "lead_outcome": {"outcome": "no_answer", "note": "voicemail"},
    "lead_do_not_contact": {"reason": "asked by phone"},
    "lead_contact_edit": {"email": "typed@broker.example", "phone": "(415) 555-0100", "mailing_state": "CA"},
    "settings": {"notify_by_email": "on"},
    "list_columns": {"columns": ["score", "status"]},
}

_LEAD_ROW_SQL = (
    "SELECT email, email_bidx, phone_bidx, email_unconfirmed, phone_unconfirmed, mailing_state, updated_at"
    " FROM leads WHERE id = %s"
)


def _lead_row(lead_id) -> tuple:
    """The lead's row as SQL reads it (the proof that a refused action changed nothing)."""
    with service_context(), connection.cursor() as cursor:
        cursor.execute(_LEAD_ROW_SQL, [lead_id])
        return cursor.fetchone()


@pytest.mark.parametrize(("name", "method", "who", "whose", "expected"), ACCESS)
def test_access_table(
    client_for, broker_a, lead_a, lead_b, staff_user, plain_user, name, method, who, whose, expected
):
    user = {"anon": None, "staff": staff_user, "nobroker": plain_user, "broker": broker_a.user}[who]
    client = client_for(user)
    lead = {OWN: lead_a, OTHER: lead_b, None: None}[whose]
    url = _lead_url(name, lead) if lead else reverse(f"portal:{name}")
    other_before = _lead_row(lead_b.pk)
    response = getattr(client, method)(url, POST_DATA.get(name, {}))
    assert response.status_code == expected, response.content[:300]
    if who == "anon":
        assert response["Location"].startswith("/accounts/login/")
    if who == "staff":
        assert response["Location"] == "/admin/"
    if whose == OTHER:
        with service_context():
            untouched = Lead.objects.get(pk=lead_b.pk)
            assert not ConsentToken.objects.filter(lead=lead_b).exists()
            assert not PipelineEvent.objects.filter(lead_id=lead_b.pk).exists()
        assert untouched.campaign_status == CampaignStatus.NEW
    if who != "broker" or whose == OTHER or name in ("notifications", "settings", "list_columns"):
        assert _lead_row(lead_b.pk) == other_before  # the other broker's lead, byte for byte
    if who != "broker" or whose == OTHER:
        with service_context():
            assert not BrokerPortalSettings.objects.exists()
            assert not PipelineEvent.objects.filter(event_type="broker_settings_changed").exists()


def test_other_brokers_lead_never_appears_in_list_search_or_export(client_for, broker_a, lead_a, lead_b):
    client = client_for(broker_a)
    for params in ({}, {"q": "Bea"}, {"q": lead_b.email}, {"q": lead_b.apn}):
        page = client.get(reverse("portal:lead_list"), params).content.decode()
        assert str(lead_b.pk) not in page
        export = b"".join(client.get(reverse("portal:lead_export"), params).streaming_content).decode()
        assert str(lead_b.pk) not in export
    assert str(lead_a.pk) in client.get(reverse("portal:lead_list")).content.decode()


def test_unknown_lead_id_is_404(client_for, broker_a):
    assert client_for(broker_a).get(f"/portal/leads/{uuid.uuid4()}/").status_code == 404


def _ids_in_page(response) -> set[str]:
    return {str(lead.pk) for lead in response.context["page"].leads}


def test_filters_search_and_sort(client_for, broker_a):
    hi = LeadFactory(
        assigned_broker=broker_a,
        last_name="Zimmer",
        lead_score=90,
        email_verified=True,
        campaign_status=CampaignStatus.QUEUED,
        consent=True,
        consented_at="2026-01-01T00:00Z",
        phone="+14155550199",
        apn="123-456-789",
    )
    lo = LeadFactory(
        assigned_broker=broker_a,
        last_name="Abbot",
        lead_score=10,
        email_verified=False,
        property_address="77 Sunset Blvd",
        property_city="Fresno",
    )
    client = client_for(broker_a)
    url = reverse("portal:lead_list")
    assert _ids_in_page(client.get(url, {"status": "queued"})) == {str(hi.pk)}
    assert _ids_in_page(client.get(url, {"email_verified": "yes"})) == {str(hi.pk)}
    assert _ids_in_page(client.get(url, {"email_verified": "no"})) == {str(lo.pk)}
    assert _ids_in_page(client.get(url, {"consent": "yes"})) == {str(hi.pk)}
    assert _ids_in_page(client.get(url, {"score_min": 50})) == {str(hi.pk)}
    assert _ids_in_page(client.get(url, {"score_max": 50})) == {str(lo.pk)}
    # search: name, address, city, phone (any formatting), email, APN; case-insensitive; terms AND-ed
    assert _ids_in_page(client.get(url, {"q": "zimm"})) == {str(hi.pk)}
    assert _ids_in_page(client.get(url, {"q": "sunset fresno"})) == {str(lo.pk)}
    assert _ids_in_page(client.get(url, {"q": "(415) 555-0199"})) == {str(hi.pk)}
    assert _ids_in_page(client.get(url, {"q": hi.email.upper()})) == {str(hi.pk)}
    assert _ids_in_page(client.get(url, {"q": "123-456-789"})) == {str(hi.pk)}
    assert _ids_in_page(client.get(url, {"q": "100%"})) == set()  # LIKE wildcards are literal
    today = timezone.localdate(hi.created_at).isoformat()  # the portal's dates are Los Angeles dates
    assert _ids_in_page(client.get(url, {"created_from": today, "created_to": today})) == {str(hi.pk), str(lo.pk)}
    assert _ids_in_page(client.get(url, {"created_to": "2000-01-01"})) == set()
    leads = client.get(url, {"sort": "score"}).context["page"].leads
    assert [lead.pk for lead in leads] == [hi.pk, lo.pk]
    leads = client.get(url, {"sort": "name"}).context["page"].leads
    assert [lead.pk for lead in leads] == [lo.pk, hi.pk]
    # nonsense values are ignored, not a server error
    assert client.get(url, {"score_min": "abc", "sort": "drop table", "page": "x"}).status_code == 200


def test_pagination_without_full_count(client_for, broker_a, django_assert_max_num_queries):
    LeadFactory.create_batch(53, assigned_broker=broker_a)
    client = client_for(broker_a)
    first = client.get(reverse("portal:lead_list")).context["page"]
    assert len(first.leads) == 50 and first.has_next and first.count == 53
    second = client.get(reverse("portal:lead_list"), {"page": 2}).context["page"]
    assert len(second.leads) == 3 and not second.has_next and second.has_previous
    assert not {lead.pk for lead in first.leads} & {lead.pk for lead in second.leads}


def test_export_is_exactly_the_filtered_own_leads(client_for, broker_a, broker_b):
    wanted = LeadFactory.create_batch(3, assigned_broker=broker_a, campaign_status=CampaignStatus.QUEUED)
    LeadFactory.create_batch(2, assigned_broker=broker_a, campaign_status=CampaignStatus.NEW)
    LeadFactory.create_batch(2, assigned_broker=broker_b, campaign_status=CampaignStatus.QUEUED)
    formula = LeadFactory(assigned_broker=broker_a, campaign_status=CampaignStatus.QUEUED, first_name="=HYPERLINK(1)")
    response = client_for(broker_a).get(reverse("portal:lead_export"), {"status": "queued"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert {row["id"] for row in rows} == {str(lead.pk) for lead in [*wanted, formula]}
    assert {row["campaign_status"] for row in rows} == {"queued"}
    assert next(row for row in rows if row["id"] == str(formula.pk))["first_name"] == "'=HYPERLINK(1)"


def test_detail_shows_fields_codes_breakdown_timeline(client_for, broker_a, broker_b):
    VerificationCodeMapFactory(channel="email", code="ES01", is_verified=True, description="Valid mailbox")
    lead = LeadFactory(
        assigned_broker=broker_a,
        email_verification_codes=["ES01", "ZZ99"],
        score_breakdown={"property": {"points": 30, "equity": "high"}, "demographics": 20},
        lead_score=50,
    )
    PipelineEventFactory(event_type="campaign_added", lead_id=lead.pk, broker_id=broker_a.pk)
    # an event about the lead carrying another broker's id is not shown (RLS)
    PipelineEventFactory(event_type="email_replied", lead_id=lead.pk, broker_id=broker_b.pk)
    page = client_for(broker_a).get(_lead_url("lead_detail", lead)).content.decode()
    for text in (
        lead.email,
        phone_national(lead.phone),
        lead.property_address,
        lead.apn,
        "Valid mailbox",
        "ZZ99",
        "Unknown code",
        "Property",
        "Added to email campaign",
    ):
        assert text in page, text
    assert "Replied" not in page


def test_queue_only_when_eligible_and_says_why(client_for, broker_a):
    client = client_for(broker_a)
    blocked = LeadFactory(assigned_broker=broker_a, consent=False, email_verified=False, phone_verified=False)
    page = client.get(_lead_url("lead_detail", blocked)).content.decode()
    assert "has not given consent to e-mail" in page and "The email is not verified" in page
    response = client.post(_lead_url("lead_queue", blocked), follow=True)
    assert "has not given consent" in response.content.decode()
    eligible = LeadFactory(assigned_broker=broker_a, contactable=True, campaign_status=CampaignStatus.NEW)
    client.post(_lead_url("lead_queue", eligible))
    with service_context():
        assert Lead.objects.get(pk=blocked.pk).campaign_status == CampaignStatus.NEW
        assert Lead.objects.get(pk=eligible.pk).campaign_status == CampaignStatus.QUEUED
        event = PipelineEvent.objects.get(lead_id=eligible.pk, event_type="lead_queued")
    assert event.broker_id == broker_a.pk
    dnc = LeadFactory(assigned_broker=broker_a, contactable=True, campaign_status=CampaignStatus.DO_NOT_CONTACT)
    client.post(_lead_url("lead_queue", dnc))
    with service_context():
        assert Lead.objects.get(pk=dnc.pk).campaign_status == CampaignStatus.DO_NOT_CONTACT


def test_do_not_contact_needs_a_reason(client_for, broker_a, lead_a):
    client = client_for(broker_a)
    assert client.post(_lead_url("lead_do_not_contact", lead_a), {"reason": "  "}).status_code == 400
    with service_context():
        assert Lead.objects.get(pk=lead_a.pk).campaign_status == CampaignStatus.NEW
    client.post(_lead_url("lead_do_not_contact", lead_a), {"reason": "Deceased"})
    with service_context():
        lead = Lead.objects.get(pk=lead_a.pk)
        assert PipelineEvent.objects.filter(lead_id=lead.pk, event_type="lead_do_not_contact").count() == 1
    assert lead.campaign_status == CampaignStatus.DO_NOT_CONTACT and lead.do_not_contact_reason == "Deceased"
    with service_context():
        event = PipelineEvent.objects.get(lead_id=lead.pk, event_type="lead_do_not_contact")
    assert "Deceased" not in str(event.event_data)  # sealed in the event …
    assert "— Deceased" in client.get(_lead_url("lead_detail", lead_a)).content.decode()  # … read on the timeline


def test_appointment_and_outcome(client_for, broker_a, lead_a):
    client = client_for(broker_a)
    assert client.post(_lead_url("lead_outcome", lead_a), {"outcome": "appointment"}).status_code == 400
    client.post(
        _lead_url("lead_outcome", lead_a),
        {"outcome": "appointment", "appointment_at": "2026-12-01T10:30", "note": "at home"},
    )
    client.post(_lead_url("lead_outcome", lead_a), {"outcome": "converted"})
    with service_context():
        booked = PipelineEvent.objects.get(lead_id=lead_a.pk, event_type="appointment_booked")
        outcome = PipelineEvent.objects.get(lead_id=lead_a.pk, event_type="lead_outcome")
        lead = Lead.objects.get(pk=lead_a.pk)
    # The note is a person's free text: sealed in the event, opened on the lead's timeline.
    assert booked.broker_id == broker_a.pk and "at home" not in str(booked.event_data)
    assert open_notes(booked.event_data)["note"] == "at home"
    assert outcome.event_data["outcome"] == "converted" and lead.campaign_status == CampaignStatus.CONVERTED
    body = client.get(_lead_url("lead_detail", lead_a)).content.decode()
    assert "Appointment booked" in body and "· at home" in body
    assert "for Dec 1, 2026, 10:30 AM PST" in body  # the broker's zone (the default: Los Angeles)


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"consent_email": False, "consent_sms": True}, "has not given consent to e-mail"),
        ({"consent_email": False, "consent_phone": True}, "has not given consent to e-mail"),
        ({"email_verified": False, "phone_verified": True}, "The email is not verified"),
    ],
)
def test_an_email_campaign_needs_consent_to_email_and_a_verified_email(client_for, broker_a, fields, why):
    lead = LeadFactory(assigned_broker=broker_a, contactable=True, campaign_status=CampaignStatus.NEW, **fields)
    response = client_for(broker_a).post(_lead_url("lead_queue", lead), follow=True)
    assert why in response.content.decode()
    with service_context():
        assert Lead.objects.get(pk=lead.pk).campaign_status == CampaignStatus.NEW


def test_dashboard_shows_only_own_figures_as_charts(client_for, broker_a, lead_a, lead_b):
    LeadFactory(assigned_broker=broker_a, email_verified=True)
    response = client_for(broker_a).get(reverse("portal:dashboard"))
    figures = response.context["figures"]
    assert figures["leads_total"] == 2 and sum(figures["campaign_status"].values()) == 2
    page = response.content.decode()
    assert "chart.umd.min.js" in page and 'id="data-funnel"' in page and "cdn" not in page.lower()


def test_staff_sees_every_brokers_leads_in_the_admin(client_for, staff_user, lead_a, lead_b):
    page = client_for(staff_user).get("/admin/leads/lead/").content.decode()
    assert str(lead_a.pk) in page and str(lead_b.pk) in page


def test_count_is_exact_up_to_the_cap_and_an_estimate_beyond(client_for, broker_a, monkeypatch, as_broker):
    from leads import selectors

    monkeypatch.setattr(selectors, "COUNT_CAP", 5)
    LeadFactory.create_batch(8, assigned_broker=broker_a)
    client = client_for(broker_a)
    page = client.get(reverse("portal:lead_list")).context["page"]
    assert page.count == 8 and not page.count_capped  # one page: counted exactly
    with as_broker(broker_a):
        plain = selectors.lead_page(broker=broker_a, filters=selectors.LeadFilters(), page=1, page_size=3)
        searched = selectors.lead_page(
            broker=broker_a, filters=selectors.LeadFilters(search="main st"), page=1, page_size=3
        )
    # Past the cap: the planner's estimate, never below what was seen, never a silent cap at the cap itself.
    assert plain.count_capped and plain.has_next and plain.count >= 6
    assert (searched.count, searched.count_capped) == (8, False)  # the search function counts exactly
    body = client.get(reverse("portal:lead_list"), {"per_page": 25}).content.decode()
    assert "of 8 leads" in body
    monkeypatch.setattr(selectors, "COUNT_CAP", 2)
    body = client.get(reverse("portal:lead_list"), {"per_page": 25}).content.decode()
    assert "of 8 leads" in body  # one page: exact whatever the cap


@pytest.mark.parametrize("name", ["lead_queue", "lead_outcome", "lead_do_not_contact", "lead_consent_link"])
def test_portal_actions_need_the_csrf_token(broker_a, lead_a, name):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(broker_a.user)
    assert client.post(_lead_url(name, lead_a), POST_DATA.get(name, {})).status_code == 403
    with service_context():
        assert not PipelineEvent.objects.filter(lead_id=lead_a.pk).exists()


@pytest.mark.parametrize("sort", sorted(SORTS))
def test_search_pages_follow_the_same_order_as_the_plain_list(broker_a, broker_b, as_broker, sort):
    from leads import selectors

    for number, score in enumerate((10, 90, None, 50, 50)):
        LeadFactory(assigned_broker=broker_a, lead_score=score, property_address=f"{number} Elm St")
    LeadFactory(assigned_broker=broker_a, property_address="2 Oak Ave")
    LeadFactory(assigned_broker=broker_b, property_address="9 Elm St")
    with as_broker(broker_a):
        expected = [
            lead.pk
            for lead in selectors.lead_list(broker=broker_a, filters=selectors.LeadFilters(sort=sort))
            if lead.property_address.endswith("Elm St")
        ]
        filters = selectors.LeadFilters(sort=sort, search="elm st")
        pages = [
            selectors.lead_page(broker=broker_a, filters=filters, page=number, page_size=2) for number in (1, 2, 3)
        ]
        exported = [lead.pk for lead in selectors.lead_list(broker=broker_a, filters=filters)]
    assert [lead.pk for page in pages for lead in page.leads] == expected == exported
    assert [page.has_next for page in pages] == [True, True, False]
    assert pages[0].count == 5
