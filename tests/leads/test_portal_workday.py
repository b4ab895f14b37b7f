"""The portal's working day through the real middleware (test client): follow-ups, saved views, My day, the
appointment state and bulk actions; and the scope table: every new endpoint and bulk action refuses another
broker's leads (404) and changes no row, read back in SQL as service_role (which sees every row)."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django_q.models import OrmQ

from equity_connect.db import broker_context, service_context
from equity_connect.models import PipelineEvent
from leads.models import CampaignStatus, FollowUp, Lead, LeadAccessRecord, SavedView, Suppression
from leads.services import lead_record_outcome
from leads.tasks import consent_links_bulk_task
from leads.workday import services as workday
from pipeline.tasks import instantly_sequences_stop
from tests.factories import LeadFactory
from tests.pipeline.jobs_support import fake_instantly  # noqa: F401  (a fixture)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("axes_clean")]

OWN, OTHER = "own", "other"


def _state_sql() -> dict:
    """Every row the new endpoints could change, as service_role sees them (every row): the proof that a refused
    request changed nothing."""
    with connection.cursor() as cursor:
        state = {}
        for name, statement in {
            "leads": "SELECT id, campaign_status::text, do_not_contact_reason, updated_at, suppressed_channels::text"
            " FROM leads ORDER BY id",
            "follow_ups": "SELECT id, lead_id, due_date, done_at FROM lead_follow_ups ORDER BY id",
            "views": "SELECT id, broker_id, name, query, is_default FROM portal_saved_views ORDER BY id",
            "events": "SELECT count(*) FROM pipeline_events",
            "suppressions": "SELECT count(*) FROM suppressions",
            "tasks": "SELECT count(*) FROM django_q_ormq",
            "access": "SELECT count(*) FROM lead_access_records WHERE action = 'export'",
        }.items():
            with service_context():
                cursor.execute(statement)
                state[name] = cursor.fetchall()
    return state


@pytest.fixture
def setup(broker_a, broker_b, lead_a, lead_b):
    with service_context():
        follow_a = FollowUp.objects.create(lead=lead_a, broker=broker_a, due_date=date.today())
        follow_b = FollowUp.objects.create(lead=lead_b, broker=broker_b, due_date=date.today())
        view_a = SavedView.objects.create(broker=broker_a, name="Hot", query="sort=score")
        view_b = SavedView.objects.create(broker=broker_b, name="Theirs", query="sort=name")
    return {"follow": {OWN: follow_a, OTHER: follow_b}, "view": {OWN: view_a, OTHER: view_b}}


BULK = {
    "queue": {},
    "do_not_contact": {"reason": "asked by phone"},
    "consent_links": {},
    "follow_up": {"due_date": "2030-01-02", "note": "call"},
    "export": {},
}

# (url name, method, whose object, what it is, extra data, expected status) for a logged-in broker.
SCOPE = [
    ("follow_up_add", "post", OWN, "lead", {"due_date": "2030-01-02", "note": "x"}, 302),
    ("follow_up_add", "post", OTHER, "lead", {"due_date": "2030-01-02", "note": "x"}, 404),
    ("follow_up_done", "post", OWN, "follow", {}, 302),
    ("follow_up_done", "post", OTHER, "follow", {}, 404),
    ("saved_view_default", "post", OWN, "view", {}, 302),
    ("saved_view_default", "post", OTHER, "view", {}, 404),
    ("saved_view_delete", "post", OWN, "view", {}, 302),
    ("saved_view_delete", "post", OTHER, "view", {}, 404),
    ("lead_list_view", "get", OWN, "view", {}, 200),
    ("lead_list_view", "get", OTHER, "view", {}, 404),
    ("saved_view_save", "post", None, None, {"name": "Mine", "query": "sort=name"}, 302),
    ("my_day", "get", None, None, {}, 200),
    *[
        ("lead_bulk", "post", OWN, "lead", {"action": action, **data}, 200 if action == "export" else 302)
        for action, data in BULK.items()
    ],
    *[("lead_bulk", "post", OTHER, "lead", {"action": action, **data}, 404) for action, data in BULK.items()],
    # a selection mixing the broker's own lead with another's is refused whole
    *[("lead_bulk", "post", "both", "lead", {"action": action, **data}, 404) for action, data in BULK.items()],
    # actions are POST only
    ("lead_bulk", "get", None, None, {}, 405),
    ("follow_up_done", "get", OWN, "follow", {}, 405),
]


def _url(name, whose, kind, objects, lead_a, lead_b):
    if name == "lead_list_view":
        return f"{reverse('portal:lead_list')}?view={objects['view'][whose].pk}"
    if kind == "lead" and name != "lead_bulk":
        return reverse(f"portal:{name}", kwargs={"lead_id": (lead_a if whose == OWN else lead_b).pk})
    if kind == "follow":
        return reverse(f"portal:{name}", kwargs={"follow_up_id": objects["follow"][whose].pk})
    if kind == "view":
        return reverse(f"portal:{name}", kwargs={"view_id": objects["view"][whose].pk})
    return reverse(f"portal:{name}")


@pytest.mark.parametrize(("name", "method", "whose", "kind", "data", "expected"), SCOPE)
def test_scope_table(
    client_for,
    broker_a,
    lead_a,
    lead_b,
    setup,
    contact_windows,
    name,
    method,
    whose,
    kind,
    data,
    expected,
    django_capture_on_commit_callbacks,
):
    client = client_for(broker_a)
    url = _url(name, whose, kind, setup, lead_a, lead_b)
    if name == "lead_bulk" and method == "post":
        data = {**data, "id": {OWN: [lead_a.pk], OTHER: [lead_b.pk], "both": [lead_a.pk, lead_b.pk]}[whose]}
    before = _state_sql()
    with django_capture_on_commit_callbacks(execute=True):
        response = getattr(client, method)(url, data)
    assert response.status_code == expected, response.content[:300]
    if expected == 404:
        assert _state_sql() == before  # nothing changed, anywhere, read in SQL


@pytest.mark.parametrize("name", ["my_day", "lead_bulk", "saved_view_save"])
def test_anonymous_and_nobroker_are_refused(client, client_for, plain_user, name):
    method = "get" if name == "my_day" else "post"
    assert getattr(client, method)(reverse(f"portal:{name}")).status_code == 302
    assert getattr(client_for(plain_user), method)(reverse(f"portal:{name}")).status_code == 403


def _messages(response) -> list[str]:
    return [str(message) for message in response.wsgi_request._messages]


def _bulk(client, action, leads, **data):
    return client.post(reverse("portal:lead_bulk"), {"action": action, "id": [lead.pk for lead in leads], **data})


def test_bulk_queue_is_one_statement_and_says_what_it_skipped(client_for, broker_a):
    ready = LeadFactory.create_batch(
        3, assigned_broker=broker_a, consent=True, consent_email=True, consented_at=timezone.now(), email_verified=True
    )
    no_consent = LeadFactory(assigned_broker=broker_a, last_name="Nocon", first_name="Ann")
    queued = LeadFactory(assigned_broker=broker_a, campaign_status=CampaignStatus.QUEUED, last_name="Already")
    client = client_for(broker_a)
    with CaptureQueriesContext(connection) as queries:
        response = _bulk(client, "queue", [*ready, no_consent, queued], query="status=new")
    assert response.status_code == 302 and response["Location"] == "/portal/leads/?status=new"
    updates = [q["sql"] for q in queries.captured_queries if q["sql"].lstrip().startswith("WITH previous")]
    assert len(updates) == 1 and not [q for q in queries.captured_queries if q["sql"].startswith('UPDATE "leads"')]
    texts = _messages(response)
    assert "Queued 3 of 5 selected leads for the next campaign run." in texts
    assert "Skipped 1: no consent to e-mail (Ann Nocon)." in texts
    assert any(text.startswith("Skipped 1: already queued or in a campaign") for text in texts)
    with service_context():
        assert set(Lead.objects.filter(campaign_status="queued").values_list("id", flat=True)) == {
            *(lead.pk for lead in ready),
            queued.pk,
        }
        events = PipelineEvent.objects.filter(event_type="lead_queued")
        assert {event.lead_id for event in events} == {lead.pk for lead in ready}
        assert all(event.broker_id == broker_a.pk and event.event_data["from"] == "new" for event in events)


def test_bulk_do_not_contact_goes_through_the_suppression_list(client_for, broker_a, broker_b):
    mine = LeadFactory(assigned_broker=broker_a, email="same.person@example.net", phone="+14155550101")
    other = LeadFactory(assigned_broker=broker_b, email="same.person@example.net")  # the same person, elsewhere
    done = LeadFactory(assigned_broker=broker_a, campaign_status=CampaignStatus.DO_NOT_CONTACT)
    client = client_for(broker_a)
    assert _bulk(client, "do_not_contact", [mine, done], reason="").status_code == 302  # no reason: nothing
    with service_context():
        assert Lead.objects.get(pk=mine.pk).campaign_status == CampaignStatus.NEW
    response = _bulk(client, "do_not_contact", [mine, done], reason="moved away")
    assert "Marked 1 of 2 selected leads do-not-contact." in _messages(response)
    with service_context():
        mine.refresh_from_db()
        other.refresh_from_db()
        assert (mine.campaign_status, mine.do_not_contact_reason) == (CampaignStatus.DO_NOT_CONTACT, "moved away")
        assert set(Suppression.objects.values_list("kind", flat=True)) == {"email", "phone"}
        assert "email" in other.suppressed_channels  # bound through the list: never e-mailed by broker B either
        assert other.campaign_status == CampaignStatus.NEW


def test_bulk_consent_links_are_a_task_and_skip_unverified_addresses(
    client_for, broker_a, contact_windows, django_capture_on_commit_callbacks
):
    verified = LeadFactory(assigned_broker=broker_a, email_verified=True, property_state="CA")
    typed = LeadFactory(assigned_broker=broker_a, email_verified=False, last_name="Typed", first_name="Tia")
    nomail = LeadFactory(assigned_broker=broker_a, email=None, email_verified=True)
    client = client_for(broker_a)
    OrmQ.objects.all().delete()
    with django_capture_on_commit_callbacks(execute=True):
        response = _bulk(client, "consent_links", [verified, typed, nomail])
    texts = _messages(response)
    assert texts[0].startswith("Consent links will be e-mailed to 1 of 3 selected leads")
    assert any("e-mail not verified" in text and "Tia Typed" in text for text in texts)
    (task,) = [q.task for q in OrmQ.objects.all() if q.task["func"] == "leads.tasks.consent_links_bulk_task"]
    assert task["args"][2] == [str(verified.pk)]
    with service_context():
        assert not PipelineEvent.objects.filter(event_type="consent_link_requested").exists()  # not in the request
    assert consent_links_bulk_task(*task["args"]).startswith("1 consent link(s) asked for")
    with service_context():
        (event,) = PipelineEvent.objects.filter(event_type="consent_link_requested")
    assert event.lead_id == verified.pk and event.event_data["user"] == broker_a.user.get_username()


def test_bulk_follow_up_and_export_of_all_matching_across_pages(client_for, broker_a, broker_b):
    wanted = LeadFactory.create_batch(60, assigned_broker=broker_a, campaign_status=CampaignStatus.PAUSED)
    LeadFactory.create_batch(3, assigned_broker=broker_a)
    LeadFactory.create_batch(2, assigned_broker=broker_b, campaign_status=CampaignStatus.PAUSED)
    client = client_for(broker_a)
    data = {"scope": "matching", "query": "status=paused&per_page=25"}
    response = client.post(reverse("portal:lead_bulk"), {"action": "follow_up", "due_date": "2030-05-06", **data})
    assert "Added a follow-up to 60 of 60 selected leads." in _messages(response)
    with service_context():
        assert set(FollowUp.objects.values_list("lead_id", flat=True)) == {lead.pk for lead in wanted}
        assert PipelineEvent.objects.filter(event_type="follow_up_added").count() == 60
    export = client.post(reverse("portal:lead_bulk"), {"action": "export", **data})
    rows = list(csv.DictReader(io.StringIO(b"".join(export.streaming_content).decode())))
    assert {row["id"] for row in rows} == {str(lead.pk) for lead in wanted}
    with service_context():
        record = LeadAccessRecord.objects.get(action="export", via="portal.bulk")
    assert record.row_count == 60 and record.filters["selection"] == "matching"
    chosen = client.post(reverse("portal:lead_bulk"), {"action": "export", "id": [wanted[0].pk, wanted[5].pk]})
    rows = list(csv.DictReader(io.StringIO(b"".join(chosen.streaming_content).decode())))
    assert {row["id"] for row in rows} == {str(wanted[0].pk), str(wanted[5].pk)}


def test_a_selection_of_thousands_is_one_field_not_thousands(client_for, broker_a, broker_b):
    mine = LeadFactory.create_batch(3, assigned_broker=broker_a)
    many = [str(lead.pk) for lead in mine] * 700  # 2,100 values: one field per id would be refused (400)
    client = client_for(broker_a)
    response = client.post(
        reverse("portal:lead_bulk"), {"action": "follow_up", "due_date": "2030-01-01", "ids": ",".join(many)}
    )
    assert "Added a follow-up to 3 of 3 selected leads." in _messages(response)
    theirs = LeadFactory(assigned_broker=broker_b)
    before = _state_sql()
    carried = ",".join([str(mine[0].pk), str(theirs.pk)])
    assert client.post(reverse("portal:lead_bulk"), {"action": "queue", "ids": carried}).status_code == 404
    assert _state_sql() == before


def test_bulk_refuses_nothing_selected_and_bad_input(client_for, broker_a):
    client = client_for(broker_a)
    response = client.post(reverse("portal:lead_bulk"), {"action": "queue"})
    assert response.status_code == 302 and "Select at least one lead." in _messages(response)
    assert client.post(reverse("portal:lead_bulk"), {"action": "queue", "id": ["not-a-uuid"]}).status_code == 404
    response = client.post(reverse("portal:lead_bulk"), {"action": "nonsense", "id": []})
    assert response.status_code == 302
    response = client.post(reverse("portal:lead_bulk"), {"action": "follow_up", "due_date": "yesterday"})
    assert response.status_code == 302


def test_saved_views_default_and_switch(client_for, broker_a):
    hi = LeadFactory(assigned_broker=broker_a, lead_score=90, campaign_status=CampaignStatus.QUEUED)
    LeadFactory(assigned_broker=broker_a, lead_score=10)
    client = client_for(broker_a)
    list_url = reverse("portal:lead_list")
    assert client.get(list_url).status_code == 200  # no default yet: the plain list
    response = client.post(
        reverse("portal:saved_view_save"), {"name": "  Queued  ", "query": "status=queued&page=3&evil=1"}
    )
    with broker_context(broker_a.pk):
        view = SavedView.objects.get(name="Queued")
    assert view.query == "status=queued" and not view.is_default
    assert response["Location"] == f"{list_url}?view={view.pk}"
    page = client.get(response["Location"])
    assert [lead.pk for lead in page.context["page"].leads] == [hi.pk]
    assert page.context["current_view"] == view
    # made the default: landing on the list without parameters opens it; "All leads" (?view=all) does not
    client.post(reverse("portal:saved_view_default", kwargs={"view_id": view.pk}))
    landing = client.get(list_url)
    assert landing.status_code == 302 and landing["Location"] == f"{list_url}?view={view.pk}"
    assert len(client.get(f"{list_url}?view=all").context["page"].leads) == 2
    # a second default replaces the first (one default per broker)
    with broker_context(broker_a.pk):
        second = workday.saved_view_save(broker=broker_a, name="Low", query="sort=score_low", make_default=True)
        assert list(SavedView.objects.filter(is_default=True)) == [second]
    client.post(reverse("portal:saved_view_delete", kwargs={"view_id": second.pk}))
    assert client.get(list_url).status_code == 200
    # empty and over-long names are refused with a message
    assert "Give the view a name" in _messages(client.post(reverse("portal:saved_view_save"), {"name": " "}))[0]


def test_follow_ups_on_the_lead_page_timeline_and_my_day(client_for, broker_a, lead_a):
    broker_a.time_zone = "America/New_York"
    with service_context():
        broker_a.save(update_fields=["time_zone"])
    client = client_for(broker_a)
    today = timezone.now().astimezone(ZoneInfo("America/New_York")).date()
    for due, note in (
        (today - timedelta(days=2), "late one"),
        (today, "today's"),
        (today + timedelta(days=1), "later"),
    ):
        response = client.post(
            reverse("portal:follow_up_add", kwargs={"lead_id": lead_a.pk}), {"due_date": due.isoformat(), "note": note}
        )
        assert response.status_code == 302
    assert (
        client.post(reverse("portal:follow_up_add", kwargs={"lead_id": lead_a.pk}), {"due_date": ""}).status_code
        == 400
    )
    page = client.get(reverse("portal:lead_detail", kwargs={"lead_id": lead_a.pk})).content.decode()
    assert "late one" in page and "Follow-up added" in page and f"due {today.isoformat()}" in page
    day = client.get(reverse("portal:my_day")).context["day"]
    assert [task.note for task in day.follow_ups] == ["late one", "today's"]
    late = day.follow_ups[0]
    client.post(reverse("portal:follow_up_done", kwargs={"follow_up_id": late.pk}), {"back": "my_day"})
    assert [task.note for task in client.get(reverse("portal:my_day")).context["day"].follow_ups] == ["today's"]
    assert (
        "Follow-up done" in client.get(reverse("portal:lead_detail", kwargs={"lead_id": lead_a.pk})).content.decode()
    )


def test_appointment_flow_list_my_day_and_sequence_stop(
    client_for,
    broker_a,
    django_capture_on_commit_callbacks,
    fake_instantly,  # noqa: F811
):
    lead = LeadFactory(
        assigned_broker=broker_a, campaign_status=CampaignStatus.ACTIVE, instantly_lead_id="inst-1", last_name="Booked"
    )
    client = client_for(broker_a)
    zone = ZoneInfo(broker_a.time_zone)
    at = datetime.combine(timezone.now().astimezone(zone).date(), datetime.min.time(), zone) + timedelta(hours=23)
    OrmQ.objects.all().delete()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("portal:lead_outcome", kwargs={"lead_id": lead.pk}),
            {"outcome": "appointment", "appointment_at": at.strftime("%Y-%m-%dT%H:%M")},
        )
    assert response.status_code == 302
    listed = client.get(reverse("portal:lead_list")).content.decode()
    assert "Appointment booked" in listed
    day = client.get(reverse("portal:my_day")).context["day"]
    assert [row[1].pk for row in day.appointments] == [lead.pk]
    with service_context():
        assert Lead.objects.get(pk=lead.pk).campaign_status == CampaignStatus.ACTIVE  # the seed's enum untouched
    (task,) = [q.task for q in OrmQ.objects.all() if q.task["func"] == "pipeline.tasks.instantly_sequences_stop"]
    assert instantly_sequences_stop(*task["args"]) == "stopped"
    assert fake_instantly.deleted_ids() == ["inst-1"]
    with service_context():
        stop = PipelineEvent.objects.get(event_type="campaign_stopped", lead_id=lead.pk)
    assert stop.event_data["reason"] == "appointment booked"
    # a later outcome ends the appointment state
    with broker_context(broker_a.pk):
        lead_record_outcome(lead=lead, broker=broker_a, outcome="no_answer")
    assert "Appointment booked" not in client.get(reverse("portal:lead_list")).content.decode()
