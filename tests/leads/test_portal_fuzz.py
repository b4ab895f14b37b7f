"""Odd query strings and form bodies on every portal URL: a 200 (the last page for a page past the end), a 302
or a 400, never a server error. A table: every odd input on every URL, through the real middleware."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.factories import LeadFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("axes_clean")]

ODD_QUERIES = [
    "page=999999",
    "page=99999999999999999999999999",
    "page=-1",
    "page=0",
    "page=abc",
    "page=1e3",
    "page=" + "9" * 5000,
    "page=%00",
    "page=1&page=2",
    "created_to=9999-12-31",
    "created_from=9999-12-31",
    "created_from=0001-01-01",
    "created_to=0001-01-01",
    "created_from=0001-01-01&created_to=9999-12-31",
    "created_to=2024-13-45",
    "created_from=2024-02-30",
    "created_from=not-a-date",
    "created_from=%00",
    "score_min=abc",
    "score_min=-5&score_max=1000",
    "score_min=99999999999999999999",
    "status=nonsense",
    "status=new&status=%00",
    "sort=nonsense",
    "sort=-id;DROP TABLE leads",
    "email_verified=maybe",
    "q=%00",
    "q=" + "x" * 5000,
    "q=%25%5F%5C",
    "q=(415) 555-0199",
    "q=" + "a " * 300,
    "q=%F0%9F%92%A9",
    "q=%ED%A0%80",  # an unpaired surrogate
    "page=9999&q=Ada",
    "page=9999&created_to=9999-12-31&q=Ada&sort=score",
]
URLS = ["dashboard", "lead_list", "lead_export", "lead_detail"]


def _url(name, lead):
    return reverse(f"portal:{name}", kwargs={"lead_id": lead.pk} if name == "lead_detail" else None)


@pytest.mark.parametrize("query", ODD_QUERIES)
@pytest.mark.parametrize("name", URLS)
def test_odd_query_strings_are_never_a_server_error(client_for, broker_a, lead_a, name, query):
    client = client_for(broker_a)
    client.raise_request_exception = False
    response = client.get(f"{_url(name, lead_a)}?{query}")
    if getattr(response, "streaming", False):
        b"".join(response.streaming_content)
    assert response.status_code in (200, 400), (response.status_code, response.content[:300])


def test_a_page_past_the_end_shows_the_last_page(client_for, broker_a):
    leads = [LeadFactory(assigned_broker=broker_a, first_name="Ada") for _ in range(3)]
    client = client_for(broker_a)
    for query in ("page=999999", "page=99999999999999999999999999", "page=40&q=Ada", "page=7&created_to=9999-12-31"):
        response = client.get(reverse("portal:lead_list") + "?" + query)
        page = response.context["page"]
        assert response.status_code == 200 and page.page == 1, query
        assert {lead.pk for lead in page.leads} == {lead.pk for lead in leads}, query


ODD_POSTS = [
    ("lead_outcome", {"outcome": "appointment", "appointment_at": "9999-12-31T23:59"}),
    ("lead_outcome", {"outcome": "appointment", "appointment_at": "0001-01-01T00:00"}),
    ("lead_outcome", {"outcome": "appointment", "appointment_at": "2024-13-45T99:99"}),
    ("lead_outcome", {"outcome": "nonsense"}),
    ("lead_outcome", {"outcome": "no_answer", "note": "x\x00y"}),
    ("lead_outcome", {"outcome": "no_answer", "note": "n" * 10000}),
    ("lead_do_not_contact", {"reason": "\x00"}),
    ("lead_do_not_contact", {"reason": "r" * 10000}),
    ("lead_do_not_contact", {}),
    ("lead_queue", {"anything": "\x00"}),
    ("lead_consent_link", {"anything": "=1+1"}),
]


@pytest.mark.parametrize(("name", "data"), ODD_POSTS)
def test_odd_form_bodies_are_never_a_server_error(client_for, broker_a, lead_a, name, data):
    client = client_for(broker_a)
    client.raise_request_exception = False
    response = client.post(reverse(f"portal:{name}", kwargs={"lead_id": lead_a.pk}), data)
    assert response.status_code in (200, 302, 400), (response.status_code, response.content[:300])
