"""One rule for every CSV we write (equity_connect/spreadsheets.py): a cell that a spreadsheet would run as a formula
(`=`, `+`, `-`, `@`, tab, carriage return first) is quoted with `'`, a plain number is left alone. Checked through
each export's real HTTP path: the staff lead export (django-import-export), the brokers' export, the portal export and
the DLQ export."""

from __future__ import annotations

import csv
import io

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from equity_connect.spreadsheets import spreadsheet_safe
from tests import factories

pytestmark = pytest.mark.django_db

CELLS = [
    "=1+2",
    '==HYPERLINK("http://evil")',  # the library's own escape dropped only the first `=`
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(A1:A9)",
    "\t=1+1",
    "\r=1+1",
]


def test_the_rule():
    assert [spreadsheet_safe(cell) for cell in CELLS] == [f"'{cell}" for cell in CELLS]
    assert spreadsheet_safe("-12.5") == "-12.5" and spreadsheet_safe("+1") == "+1"  # plain numbers stay numbers
    assert spreadsheet_safe(None) == "" and spreadsheet_safe(7) == 7 and spreadsheet_safe("Ada") == "Ada"


def _rows(content: bytes) -> list[dict]:
    return list(csv.DictReader(io.StringIO(content.decode("utf-8-sig"), newline="")))


def _admin_export(client, url_name: str) -> list[dict]:
    page = client.get(reverse(url_name))
    form = page.context["form"]
    csv_choice = next(value for value, label in form.fields["format"].choices if str(label).lower() == "csv")
    data = {"format": csv_choice, "resource": "0"}
    data.update({name: "on" for name, field in form.fields.items() if field.initial is True})
    response = client.post(reverse(url_name), data)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    return _rows(response.content)


@pytest.fixture
def staff_client(client):
    client.force_login(factories.StaffUserFactory())
    return client


def test_the_staff_lead_export_quotes_every_formula(staff_client):
    broker = factories.BrokerFactory()
    for cell in CELLS:
        factories.LeadFactory(assigned_broker=broker, first_name=cell, property_city=cell, last_name="-12.5")
    rows = _admin_export(staff_client, "admin:leads_lead_export")
    assert sorted(row["first_name"] for row in rows) == sorted(f"'{cell}" for cell in CELLS)
    assert sorted(row["property_city"] for row in rows) == sorted(f"'{cell}" for cell in CELLS)
    assert {row["last_name"] for row in rows} == {"-12.5"}


def test_the_broker_export_quotes_every_formula(staff_client):
    for number, cell in enumerate(CELLS):
        factories.BrokerFactory(name=cell, email=f"b{number}@example.com")
    rows = _admin_export(staff_client, "admin:security_broker_export")
    assert sorted(row["name"] for row in rows) == sorted(f"'{cell}" for cell in CELLS)


def test_the_portal_export_quotes_every_formula(client):
    broker = factories.BrokerFactory()
    for cell in CELLS:
        factories.LeadFactory(assigned_broker=broker, first_name=cell, last_name="-12.5")
    client.force_login(broker.user)
    response = client.get(reverse("portal:lead_export"))
    rows = _rows(b"".join(response.streaming_content))
    assert sorted(row["first_name"] for row in rows) == sorted(f"'{cell}" for cell in CELLS)
    assert {row["last_name"] for row in rows} == {"-12.5"}


def test_the_dlq_export_quotes_every_formula_and_leaves_numbers(staff_client):
    items = [factories.PipelineDLQFactory(upload=None, reason=cell) for cell in [*CELLS, "-12.5"]]
    response = staff_client.post(
        reverse("admin:pipeline_pipelinedlq_changelist"),
        {"action": "export_csv", ACTION_CHECKBOX_NAME: [item.pk for item in items]},
    )
    rows = _rows(response.content)
    assert sorted(row["reason"] for row in rows) == sorted([*(f"'{cell}" for cell in CELLS), "-12.5"])
