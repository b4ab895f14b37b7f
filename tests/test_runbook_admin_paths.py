"""The runbooks and the admin match: every admin page a runbook (docs/runbooks/*.md) or the README names is
followed as a staff user. A link (`/admin/…`, with `<upload_id>`-style placeholders filled from seeded rows) must
answer 200, and each filter in its query string must be one the list applies (the same rows as the ORM's filter,
at least one of them; or a choice a list filter offers); an admin path in bold (App, Model and maybe "Add …",
joined by the runbooks' angle quote) must be in the admin's index; a button named beside one (the path, an arrow,
the button; or the button "on" the path) must be on that list's page."""

from __future__ import annotations

import datetime as dt
import re
import urllib.parse
from pathlib import Path

import pytest
from django.utils import timezone

from equity_connect.db import service_context
from equity_connect.events import record_event
from pipeline.models import PipelineDLQ
from tests.factories import (
    AlertFactory,
    PartnerFactory,
    PipelineDLQFactory,
    StaffUserFactory,
    UploadFactory,
)

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [*sorted((ROOT / "docs" / "runbooks").glob("*.md")), ROOT / "README.md"]
SEP = "\u203a"  # the angle quote between the parts of an admin path in the runbooks
LINK = re.compile(r"(/admin/(?:[^\s`)\"'<>]|<\w+>)*)")
BOLD_PATH = re.compile(rf"\*\*([^*\n]+?(?: {SEP} [^*\n]+?)+)\*\*")
BUTTON_AFTER = re.compile(rf"\*\*([^*\n]+? {SEP} [^*\n]+?)\*\* → \*\*([^*\n]+?)\*\*")
BUTTON_ON = re.compile(rf"\*\*([^*\n{SEP}]+?)\*\* on \*\*([^*\n]+? {SEP} [^*\n]+?)\*\*")


def _text() -> str:
    return "\n".join(path.read_text() for path in DOCUMENTS)


def runbook_links() -> list[str]:
    return sorted({link.rstrip(".,;:") for link in LINK.findall(_text())})


def runbook_paths() -> list[str]:
    return sorted(set(BOLD_PATH.findall(_text())))


def runbook_buttons() -> list[tuple[str, str]]:
    text = _text()
    return sorted(set(BUTTON_AFTER.findall(text)) | {(path, button) for button, path in BUTTON_ON.findall(text)})


@pytest.fixture
def staff(client):
    client.force_login(StaffUserFactory())
    return client


@pytest.fixture
def placeholders():
    """Rows for every kind of link the runbooks give: an upload with a partner, its DLQ rows, events, an alert."""
    partner = PartnerFactory()
    upload = UploadFactory(partner=partner, status="failed")
    UploadFactory(status="done")
    old = PipelineDLQFactory(upload=upload, source="upload_row", status="open")
    PipelineDLQFactory(source="webhook", status="resolved")
    with service_context():
        PipelineDLQ.objects.filter(pk=old.pk).update(created_at=timezone.now() - dt.timedelta(days=10))
        for event_type, upload_id in (
            ("upload_received", upload.id),
            ("upload_rejected", None),
            ("mv_refreshed", None),
        ):
            record_event(event_type, upload_id=upload_id, data={"job": "refresh_contactable_leads"})
    AlertFactory(state="firing")
    AlertFactory(state="resolved")
    return {"upload_id": str(upload.id), "partner_id": str(partner.id)}


def test_the_runbooks_name_admin_pages():
    assert len(runbook_links()) >= 8 and len(runbook_paths()) >= 8 and len(runbook_buttons()) >= 3


@pytest.mark.parametrize("link", runbook_links())
def test_every_admin_link_a_runbook_gives_opens_and_its_filters_apply(staff, placeholders, link):
    filled = re.sub(r"<(\w+)>", lambda match: placeholders[match.group(1)], link)
    response = staff.get(filled)
    assert response.status_code == 200, f"{link}: {response.status_code} {response.get('Location', '')}"
    query = urllib.parse.parse_qsl(urllib.parse.urlsplit(filled).query)
    if not query:
        return
    changelist = response.context["cl"]
    model_admin = changelist.model_admin
    offered = {
        spec.parameter_name: {str(value) for value, _ in spec.lookup_choices}
        for spec in changelist.filter_specs
        if hasattr(spec, "parameter_name") and hasattr(spec, "lookup_choices")
    }
    lookups = {}
    for name, value in query:
        if name in offered:  # a list filter of the admin's own (e.g. the DLQ's age)
            assert value in offered[name], f"{link}: {name}={value} is not a choice of that filter"
        else:
            lookups[name] = value.split(",") if name.endswith("__in") else value
    if lookups:
        with service_context():
            expected = model_admin.get_queryset(response.wsgi_request).filter(**lookups).count()
        assert expected > 0, f"{link}: the seeded rows do not show the filter working"
        assert changelist.result_count == expected, f"{link}: the list did not apply {lookups}"


def _admin_index(staff) -> dict[str, dict[str, dict]]:
    """{app name: {model name: the index's entry}} as the admin's home page lists them."""
    apps = staff.get("/admin/").context["app_list"]
    return {app["name"]: {model["name"]: model for model in app["models"]} for app in apps}


@pytest.mark.parametrize("path", runbook_paths())
def test_every_admin_path_a_runbook_names_is_in_the_admin(staff, path):
    index = _admin_index(staff)
    app, model, *rest = path.split(f" {SEP} ")
    assert app in index, f"**{path}**: no app {app!r} in the admin (apps: {sorted(index)})"
    assert model in index[app], f"**{path}**: no {model!r} under {app} (models: {sorted(index[app])})"
    entry = index[app][model]
    assert staff.get(entry["admin_url"]).status_code == 200
    for step in rest:
        assert step.startswith("Add ") and entry.get("add_url"), f"**{path}**: {step!r} is not the add page"
        assert staff.get(entry["add_url"]).status_code == 200


@pytest.mark.parametrize(("path", "button"), runbook_buttons())
def test_every_button_a_runbook_names_is_on_its_page(staff, path, button):
    app, model = path.split(f" {SEP} ")[:2]
    page = staff.get(_admin_index(staff)[app][model]["admin_url"]).content.decode()
    assert button in page, f"**{button}** is not on **{path}**"
