"""An admin smoke test per registered model (changelist, add, change as staff, through the middleware), and
django-import-export: the verification-code map and brokers in and out, leads out for staff only."""

from __future__ import annotations

import csv
import io

import pytest
from django.contrib import admin
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import NoReverseMatch, reverse

from equity_connect.db import service_context
from leads.models import VerificationCodeMap
from pipeline.models import Experiment, ExperimentVariant, SmsMessage
from security.models import Broker
from tests import factories

pytestmark = pytest.mark.django_db

MODELS = sorted(admin.site._registry, key=lambda model: model._meta.label)


@pytest.fixture
def staff(client):
    user = factories.StaffUserFactory()
    client.force_login(user)
    return user


@pytest.fixture
def one_of_each(staff):
    lead = factories.LeadFactory()
    factories.ConsentTokenFactory(lead=lead)
    factories.LeadConsentAuditFactory(lead=lead)
    factories.VerificationCodeMapFactory()
    factories.PartnerKeyFactory()
    factories.LeadStagingFactory()
    factories.PipelineDLQFactory()
    factories.PipelineEventFactory()
    factories.IngestReplayGuardFactory()
    factories.FeederRunFactory()
    factories.WebhookDeliveryFactory()
    factories.AlertFactory()
    factories.JobHeartbeatFactory()
    with service_context():
        SmsMessage.objects.create(
            direction="inbound",
            kind="reply",
            lead=lead,
            phone="+14155550100",
            phone_bidx="x",
            body="hi",
            review="pending",
        )
        experiment = Experiment.objects.create(name="smoke", sample_size=10)
        ExperimentVariant.objects.create(experiment=experiment, name="A", instantly_campaign_id="c")


def _first(model):
    with service_context():
        return model._default_manager.order_by("pk").first()


@pytest.mark.parametrize("model", MODELS, ids=lambda model: model._meta.label)
def test_admin_pages(client, one_of_each, model):
    model_admin = admin.site._registry[model]
    info = model._meta.app_label, model._meta.model_name
    response = client.get(reverse("admin:{}_{}_changelist".format(*info)))
    assert response.status_code == 200
    response = client.get(reverse("admin:{}_{}_changelist".format(*info)), {"q": "x"})
    assert response.status_code in (200, 302)  # 302: a model without search redirects with ?e=1

    class Request:
        user = one_of_each_user(client)

    if model_admin.has_add_permission(Request()):
        assert client.get(reverse("admin:{}_{}_add".format(*info))).status_code == 200
    obj = _first(model)
    if obj is not None:
        response = client.get(reverse("admin:{}_{}_change".format(*info), args=[obj.pk]))
        assert response.status_code == 200


def one_of_each_user(client):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.get(pk=client.session["_auth_user_id"])


def test_admin_index_links_the_dashboard(client, staff):
    body = client.get("/admin/").content.decode()
    assert 'href="/admin/dashboard/"' in body


def test_every_model_is_smoke_tested():
    labels = {model._meta.label for model in MODELS}
    assert {
        "pipeline.PipelineDLQ",
        "leads.Lead",
        "security.Broker",
        "equity_connect.PipelineEvent",
        "leads.VerificationCodeMap",
        "security.PartnerKey",
        "django_q.Schedule",
        "django_q.Failure",
    } <= labels


# --- import / export ------------------------------------------------------------------------------------


def _import(client, url_name: str, content: str):
    """The admin's two steps: upload and preview, then confirm."""
    url = reverse(url_name)
    page = client.get(url)
    formats = page.context["form"].fields["format"].choices
    csv_choice = next(value for value, label in formats if str(label).lower() == "csv")
    response = client.post(
        url,
        {
            "format": csv_choice,
            "import_file": SimpleUploadedFile("import.csv", content.encode(), content_type="text/csv"),
            "resource": "0",
        },
    )
    assert response.status_code == 200, response.content[:2000]
    confirm = response.context["confirm_form"]
    assert confirm is not None, response.context.get("result") and response.context["result"].invalid_rows
    data = {name: confirm.initial.get(name, "") for name in confirm.fields}
    data = {key: value for key, value in data.items() if value is not None}
    done = client.post(reverse(url_name.replace("_import", "_process_import")), data, follow=True)
    assert done.status_code == 200
    return done


def _export(client, url_name: str) -> list[dict]:
    url = reverse(url_name)
    page = client.get(url)
    assert page.status_code == 200
    form = page.context["form"]
    formats = form.fields["format"].choices
    csv_choice = next(value for value, label in formats if str(label).lower() == "csv")
    data = {"format": csv_choice, "resource": "0"}
    for name, field in form.fields.items():  # every exportable column ticked, as the page does by default
        if field.initial is True:
            data[name] = "on"
    response = client.post(url, data)
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))


def test_verification_code_map_import_and_export(client, staff):
    factories.VerificationCodeMapFactory(channel="email", code="ES01", is_verified=False, description="old")
    _import(
        client,
        "admin:leads_verificationcodemap_import",
        "channel,code,is_verified,description\nemail,ES01,1,deliverable\nphone,PS01,1,connected\n",
    )
    with service_context():
        rows = {(m.channel, m.code): (m.is_verified, m.description) for m in VerificationCodeMap.objects.all()}
    assert rows == {("email", "ES01"): (True, "deliverable"), ("phone", "PS01"): (True, "connected")}
    exported = _export(client, "admin:leads_verificationcodemap_export")
    assert {(row["channel"], row["code"], row["is_verified"]) for row in exported} == {
        ("email", "ES01", "1"),
        ("phone", "PS01", "1"),
    }


def test_broker_import_and_export(client, staff):
    factories.BrokerFactory(email="walter@example.com", name="Walter", territory_states=["CA"])
    _import(
        client,
        "admin:security_broker_import",
        "name,email,phone,company,nmls_id,territory_states,territory_zip_prefixes,active\n"
        'Walter White,walter@example.com,,,,"CA,NV",,1\n'
        "Jesse P,jesse@example.com,,,123456,AZ,850,1\n",
    )
    with service_context():
        brokers = {b.email: b for b in Broker.objects.all()}
    assert brokers["walter@example.com"].name == "Walter White"
    assert brokers["walter@example.com"].territory_states == ["CA", "NV"]
    assert brokers["jesse@example.com"].territory_zip_prefixes == ["850"]
    exported = {row["email"]: row for row in _export(client, "admin:security_broker_export")}
    assert exported["jesse@example.com"]["nmls_id"] == "123456"


def test_lead_export_for_staff_only(client, staff):
    broker = factories.BrokerFactory(email="owner@example.com")
    factories.LeadFactory(assigned_broker=broker, first_name="=cmd|' /C calc'!A0", email="x@example.net")
    rows = _export(client, "admin:leads_lead_export")
    assert len(rows) == 1
    assert rows[0]["assigned_broker_email"] == "owner@example.com"
    assert not rows[0]["first_name"].startswith("=")  # formulas neutralised
    # No import for leads (they come in through the signed upload pipeline).
    with pytest.raises(NoReverseMatch):
        reverse("admin:leads_lead_import")

    # A non-staff broker cannot reach the admin (or its export) at all.
    client.force_login(broker.user)
    response = client.get(reverse("admin:leads_lead_export"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
