"""Response headers through the real middleware: a Content-Security-Policy without inline script on every page
(and no page carrying an inline script, event handler or javascript: URL for it to block), `Cache-Control:
no-store` on every page that shows lead data, and `Referrer-Policy: no-referrer` on the consent page."""

from __future__ import annotations

import re
import urllib.parse
from html.parser import HTMLParser

import pytest
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from equity_connect.db import service_context
from leads.consent.services import consent_link_create
from tests.factories import (
    BrokerFactory,
    LeadFactory,
    PipelineDLQFactory,
    PossibleDuplicateFactory,
    StaffUserFactory,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("axes_clean")]


@pytest.fixture
def data():
    broker = BrokerFactory()
    lead = LeadFactory(assigned_broker=broker, first_name="Ada")
    pair = PossibleDuplicateFactory(lead_a=lead, lead_b=LeadFactory(assigned_broker=broker))
    dlq = PipelineDLQFactory(upload=None, reason="no dedupe key")
    with service_context():
        consent_url = consent_link_create(lead=lead, broker=broker.pk)
    split = urllib.parse.urlsplit(consent_url)
    return {"broker": broker, "lead": lead, "pair": pair, "dlq": dlq, "consent": f"{split.path}?{split.query}"}


def _portal_pages(data):
    lead = data["lead"]
    return [
        "/portal/",
        "/portal/leads/",
        "/portal/leads/?q=Ada&page=2",
        "/portal/leads/export.csv",
        reverse("portal:lead_detail", kwargs={"lead_id": lead.pk}),
        "/accounts/password_change/",
    ]


def _admin_pages(data):
    pages = ["/admin/", "/admin/dashboard/", "/admin/leads/lead/export/", "/admin/security/partnerkey/add/"]
    for model in admin.site._registry:
        info = model._meta.app_label, model._meta.model_name
        pages.append(reverse("admin:{}_{}_changelist".format(*info)))
    pages += [
        reverse("admin:leads_lead_change", args=[data["lead"].pk]),
        reverse("admin:pipeline_pipelinedlq_change", args=[data["dlq"].pk]),
        reverse("admin:pipeline_possibleduplicate_change", args=[data["pair"].pk]),
    ]
    return pages


def _get(client, url):
    response = client.get(url)
    if getattr(response, "streaming", False):
        b"".join(response.streaming_content)
    return response


def _script_sources(policy: str) -> str:
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";") if part.strip())
    return directives.get("script-src", directives.get("default-src", ""))


class _InlineCode(HTMLParser):
    """Whatever a policy without 'unsafe-inline' in script-src would block: inline scripts (JSON data blocks are
    not run, so they may stay), on* event handler attributes, javascript: URLs."""

    def __init__(self):
        super().__init__()
        self.found: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "script" and not attributes.get("src") and attributes.get("type") != "application/json":
            self._in_script = True
        for name, value in attrs:
            if name.lower().startswith("on"):
                self.found.append(f"<{tag} {name}=…>")
            if name.lower() in ("href", "src", "action", "formaction") and (value or "").strip().lower().startswith(
                "javascript:"
            ):
                self.found.append(f"<{tag} {name}={value}>")

    def handle_data(self, data):
        if self._in_script and data.strip():
            self.found.append(f"inline script: {data.strip()[:60]}")

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False


def _check_page(response, url):
    assert response.status_code in (200, 302, 400, 409), (url, response.status_code)
    policy = response.headers.get("Content-Security-Policy", "")
    assert "'self'" in _script_sources(policy) and "unsafe" not in _script_sources(policy), (url, policy)
    assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
    if response.headers.get("Content-Type", "").startswith("text/html"):
        parser = _InlineCode()
        parser.feed(response.content.decode())
        assert parser.found == [], (url, parser.found)


def test_broker_pages_have_the_policy_no_inline_code_and_no_store(client, data):
    client.force_login(data["broker"].user)
    for url in _portal_pages(data):
        response = _get(client, url)
        _check_page(response, url)
        assert "no-store" in response.headers.get("Cache-Control", ""), url


def test_admin_pages_have_the_policy_no_inline_code_and_no_store(client, data):
    client.force_login(StaffUserFactory())
    for url in _admin_pages(data):
        response = _get(client, url)
        _check_page(response, url)
        assert "no-store" in response.headers.get("Cache-Control", ""), url


def test_exports_are_not_stored(client, data):
    client.force_login(StaffUserFactory())
    dlq_export = client.post(
        reverse("admin:pipeline_pipelinedlq_changelist"),
        {"action": "export_csv", ACTION_CHECKBOX_NAME: [data["dlq"].pk]},
    )
    page = client.get("/admin/leads/lead/export/")
    form = page.context["form"]
    csv_choice = next(value for value, label in form.fields["format"].choices if str(label).lower() == "csv")
    fields = {name: "on" for name, field in form.fields.items() if field.initial is True}
    lead_export = client.post("/admin/leads/lead/export/", {"format": csv_choice, "resource": "0", **fields})
    for response in (dlq_export, lead_export):
        assert response["Content-Type"].startswith("text/csv") and "no-store" in response["Cache-Control"]


def test_public_pages_have_the_policy(client, data):
    for url in ("/accounts/login/", "/accounts/password_reset/", "/accounts/password_reset/done/"):
        _check_page(_get(client, url), url)


def test_the_consent_page_is_not_stored_and_sends_no_referrer(client, data):
    for response in (
        client.get(data["consent"]),
        client.get("/consent?token=nonsense"),
        client.post(data["consent"], {"choice": "consent"}),
        client.post(data["consent"], {"choice": "consent"}),  # used: the problem page
    ):
        assert response.status_code in (200, 400, 409)
        _check_page(response, "/consent")
        assert "no-store" in response["Cache-Control"]
        assert response["Referrer-Policy"] == "no-referrer"


def test_every_template_loads_scripts_only_from_files():
    """Templates that no page above renders still carry no inline script (a plain text check of them all)."""
    from pathlib import Path

    templates = Path(__file__).resolve().parents[2] / "templates"
    found = []
    for path in templates.rglob("*.html"):
        text = path.read_text()
        for match in re.finditer(r"<script(?P<attrs>[^>]*)>", text):
            attrs = match.group("attrs")
            if "src=" not in attrs and "application/json" not in attrs:
                found.append(f"{path.relative_to(templates)}: {match.group(0)}")
        found += [f"{path.relative_to(templates)}: {m.group(0)}" for m in re.finditer(r"\son\w+\s*=", text)]
    assert found == []
