"""Every page works under the Content-Security-Policy, in Debian's Chromium: staff open every admin list, the
change pages, the dashboard and the export page; a broker opens the portal; a lead opens the consent page. The
browser reports no policy violation and no script error, and the scripted parts still work (the charts, the
export page's "Select all" box)."""

from __future__ import annotations

import urllib.parse

import pytest
from django.contrib import admin
from django.urls import reverse

from equity_connect.db import service_context
from leads.consent.services import consent_link_create
from tests.browser.support import wait_in_page
from tests.factories import (
    BrokerFactory,
    LeadFactory,
    PipelineDLQFactory,
    PipelineEventFactory,
    PossibleDuplicateFactory,
    StaffUserFactory,
)

# Recorded by the page itself (an init script runs outside the page's policy).
WATCH = """
window.__violations = [];
document.addEventListener('securitypolicyviolation', (e) =>
    window.__violations.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`));
"""


def _watched(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_init_script(WATCH)
    page = context.new_page()
    page.set_default_timeout(15_000)
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"{page.url}: {error}"))
    page.on(
        "console",
        lambda message: (
            problems.append(f"{page.url}: {message.text}")
            if message.type == "error" and "Content Security Policy" in message.text
            else None
        ),
    )
    return context, page, problems


def _visit(page, problems, url):
    response = page.goto(url)
    assert response.status < 400, (url, response.status)
    assert response.headers.get("content-security-policy", "").startswith("default-src 'self'"), url
    page.wait_for_load_state("load")
    problems += [f"{url}: {violation}" for violation in page.evaluate("window.__violations")]


def _log_in(page, base, url, email):
    page.goto(base + url)
    page.fill("input[name=username]", email)
    page.fill("input[name=password]", "correct-horse-battery")
    page.click("input[type=submit], #login-submit")
    page.wait_for_load_state("load")


@pytest.mark.django_db(transaction=True)
def test_every_page_works_under_the_policy(live_server, settings, browser):
    settings.CONSENT_FORM_URL = live_server.url
    staff, broker = StaffUserFactory(), BrokerFactory()
    lead = LeadFactory(assigned_broker=broker, email_verified=True, campaign_status="active")
    LeadFactory.create_batch(3, assigned_broker=broker, campaign_status="queued")
    PipelineEventFactory(event_type="campaign_added", lead_id=lead.pk, broker_id=broker.pk)
    pair = PossibleDuplicateFactory(lead_a=lead, lead_b=LeadFactory(assigned_broker=broker))
    dlq = PipelineDLQFactory(upload=None, reason="no dedupe key")
    with service_context():
        consent = urllib.parse.urlsplit(consent_link_create(lead=lead, broker=broker.pk))

    # Staff: the admin.
    context, page, problems = _watched(browser)
    _log_in(page, live_server.url, "/admin/login/?next=/admin/", staff.email)
    pages = ["/admin/", "/admin/password_change/"]
    for model in admin.site._registry:
        pages.append(reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist"))
    pages += [
        reverse("admin:leads_lead_change", args=[lead.pk]),
        reverse("admin:pipeline_pipelinedlq_change", args=[dlq.pk]),
        reverse("admin:pipeline_possibleduplicate_change", args=[pair.pk]),
        reverse("admin:security_partnerkey_add"),
        reverse("admin:leads_lead_add"),
    ]
    for url in pages:
        _visit(page, problems, live_server.url + url)
    _visit(page, problems, f"{live_server.url}/admin/dashboard/")
    assert page.evaluate("document.querySelectorAll('svg.ec-svg-chart .ec-bar-value').length") > 10
    _visit(page, problems, f"{live_server.url}/admin/pipeline/alert/thresholds/")
    _visit(page, problems, f"{live_server.url}/admin/leads/lead/export/")
    boxes = "document.querySelectorAll('.selectable-field-export-row input[type=checkbox]:checked').length"
    assert page.evaluate(boxes) > 5
    page.uncheck("input.select-toggle")
    assert page.evaluate(boxes) == 0
    page.check("input.select-toggle")
    assert page.evaluate(boxes) > 5
    context.close()

    # A broker: the portal.
    context, portal, broker_problems = _watched(browser)
    _log_in(portal, live_server.url, "/accounts/login/", broker.user.email)
    for url in ("/portal/", "/portal/leads/", f"/portal/leads/{lead.pk}/", "/accounts/password_change/"):
        _visit(portal, broker_problems, live_server.url + url)
    portal.goto(f"{live_server.url}/portal/")
    wait_in_page(portal, "window.Chart && Chart.getChart(document.getElementById('chart-funnel'))")
    context.close()

    # A lead: the consent page, and the public pages.
    context, public, public_problems = _watched(browser)
    for url in (f"{consent.path}?{consent.query}", "/accounts/login/", "/accounts/password_reset/"):
        _visit(public, public_problems, live_server.url + url)
    context.close()

    assert problems + broker_problems + public_problems == []
