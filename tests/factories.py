"""factory_boy factories for every model. Rows are written in the service_role context, as staff and jobs
write them (row-level security is on for every domain table)."""

from __future__ import annotations

import hashlib
import uuid

import factory
from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone

from equity_connect.db import service_context
from equity_connect.models import PipelineEvent
from leads.models import CampaignStatus, ConsentToken, Lead, LeadAccessRecord, LeadConsentAudit, VerificationCodeMap
from pipeline.ingest import normalise
from pipeline.models import (
    Alert,
    FeederRun,
    IngestReplayGuard,
    JobHeartbeat,
    LeadStaging,
    PipelineDLQ,
    Upload,
    WebhookDelivery,
)
from security.models import Broker, Partner, PartnerKey


class ServiceFactory(factory.django.DjangoModelFactory):
    class Meta:
        abstract = True

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        with service_context():
            return super()._create(model_class, *args, **kwargs)

    @classmethod
    def _after_postgeneration(cls, instance, create, results=None):
        with service_context():
            super()._after_postgeneration(instance, create, results)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    username = factory.SelfAttribute("email")
    password = factory.PostGenerationMethodCall("set_password", "correct-horse-battery")

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class StaffUserFactory(UserFactory):
    is_staff = True
    is_superuser = True


class RoleUserFactory(UserFactory):
    """Staff in a staff role (equity_connect/staff_roles.py), not a superuser: `role="ops"` (default) or "admin"."""

    is_staff = True
    is_superuser = False

    @factory.post_generation
    def role(obj, create, extracted, **kwargs):
        if create:
            from django.contrib.auth.models import Group

            obj.groups.add(Group.objects.get(name=extracted or "ops"))


class BrokerFactory(ServiceFactory):
    class Meta:
        model = Broker

    name = factory.Faker("name")
    email = factory.Sequence(lambda n: f"broker{n}@example.com")
    user = factory.SubFactory(UserFactory, email=factory.SelfAttribute("..email"))
    territory_states = factory.LazyFunction(lambda: ["CA"])
    territory_zip_prefixes = factory.LazyFunction(list)


class LeadFactory(ServiceFactory):
    class Meta:
        model = Lead

    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    email = factory.Sequence(lambda n: f"lead{n}@example.net")
    phone = factory.Sequence(lambda n: f"+1415555{n % 10000:04d}")
    property_address = factory.Sequence(lambda n: f"{100 + n} Main St")
    property_city = "San Diego"
    property_state = "CA"
    property_zip = "92101"
    property_value = 650000
    estimated_equity = 400000
    property_type = "Single Family"
    age = 70
    owner_occupied = True
    assigned_broker = factory.SubFactory(BrokerFactory)
    lead_score = 50
    campaign_status = CampaignStatus.NEW
    mak = factory.Sequence(lambda n: f"MAK{n:09d}")
    apn = factory.Sequence(lambda n: f"APN-{n:08d}")
    # The ingestion's own address hash, so factory leads match uploads of the same address.
    addr_hash = factory.LazyAttribute(
        lambda o: normalise.addr_hash(o.property_address, o.property_city, o.property_state, o.property_zip)
    )

    class Params:
        contactable = factory.Trait(
            consent=True,
            consent_email=True,
            consented_at=factory.LazyFunction(timezone.now),
            consent_method="form",
            email_verified=True,
            phone_verified=True,
            campaign_status=CampaignStatus.QUEUED,
        )


class ConsentTokenFactory(ServiceFactory):
    class Meta:
        model = ConsentToken

    lead = factory.SubFactory(LeadFactory)
    broker = factory.SelfAttribute("lead.assigned_broker")
    token_hash = factory.Sequence(lambda n: hashlib.sha256(f"nonce-{n}".encode()).hexdigest())
    expires_at = factory.LazyFunction(lambda: timezone.now() + timezone.timedelta(days=7))


class LeadConsentAuditFactory(ServiceFactory):
    class Meta:
        model = LeadConsentAudit

    lead = factory.SubFactory(LeadFactory)
    consent = True
    method = "form"
    ip_address = "127.0.0.1"
    user_agent = "pytest"


class LeadAccessRecordFactory(ServiceFactory):
    class Meta:
        model = LeadAccessRecord

    user_id = factory.LazyFunction(lambda: UserFactory().pk)
    username = "someone@example.com"
    action = "view"
    via = "admin.lead"
    lead_id = factory.LazyFunction(uuid.uuid4)
    ip_address = "127.0.0.1"
    user_agent = "pytest"


class VerificationCodeMapFactory(ServiceFactory):
    class Meta:
        model = VerificationCodeMap
        django_get_or_create = ("channel", "code")

    channel = "email"
    code = factory.Sequence(lambda n: f"ES{n:02d}")
    is_verified = True


class PartnerFactory(ServiceFactory):
    class Meta:
        model = Partner

    name = factory.Sequence(lambda n: f"Partner {n}")


class PartnerKeyFactory(ServiceFactory):
    """Secret: pass `secret=` to choose it; the plain value is on `obj.plain_secret`."""

    class Meta:
        model = PartnerKey
        exclude = ("secret",)
        skip_postgeneration_save = True

    partner = factory.SubFactory(PartnerFactory)
    key_id = factory.Sequence(lambda n: f"pk_test{n:010d}")
    secret = factory.Sequence(lambda n: f"test-partner-secret-{n:040d}")
    secret_ciphertext = factory.LazyAttribute(lambda o: __import__("security.crypto").crypto.encrypt(o.secret))

    @factory.post_generation
    def plain_secret(obj, create, extracted, **kwargs):
        from security import crypto

        obj.plain_secret = crypto.decrypt(obj.secret_ciphertext)


class UploadFactory(ServiceFactory):
    class Meta:
        model = Upload

    partner = factory.SubFactory(PartnerFactory)
    content_sha256 = factory.Sequence(lambda n: hashlib.sha256(f"upload-{n}".encode()).hexdigest())
    filename = "leads.csv"


class LeadStagingFactory(ServiceFactory):
    class Meta:
        model = LeadStaging

    upload = factory.SubFactory(UploadFactory)
    line_number = factory.Sequence(lambda n: n + 2)
    raw = factory.LazyFunction(lambda: {"address": "1 Main St"})


class PipelineDLQFactory(ServiceFactory):
    class Meta:
        model = PipelineDLQ

    source = "upload_row"
    upload = factory.SubFactory(UploadFactory)
    line_number = 2
    payload = factory.LazyFunction(lambda: {"address": ""})
    reason = "no dedupe key: the row has no MAK, no APN and no address"


class PipelineEventFactory(ServiceFactory):
    class Meta:
        model = PipelineEvent

    event_type = "upload_received"
    event_data = factory.LazyFunction(dict)


def backdate_events(events, when) -> int:
    """Move events (a queryset of PipelineEvent, read in the service context) to `when`. The trail is append-only
    for every application role (pipeline 0026), so this goes through the test database's own owner function
    `tests_pipeline_events_backdate` (tests/conftest.py), on the test's connection and in its transaction."""
    with service_context(), connection.cursor() as cursor:
        ids = list(events.values_list("pk", flat=True))
        cursor.execute("SELECT tests_pipeline_events_backdate(%s::bigint[], %s)", [ids, when])
        return cursor.fetchone()[0]


class IngestReplayGuardFactory(ServiceFactory):
    class Meta:
        model = IngestReplayGuard

    content_sha256 = factory.Sequence(lambda n: hashlib.sha256(f"guard-{n}".encode()).hexdigest())


class FeederRunFactory(ServiceFactory):
    class Meta:
        model = FeederRun

    business_date = factory.LazyFunction(lambda: timezone.localdate())
    status = "done"


class WebhookDeliveryFactory(ServiceFactory):
    class Meta:
        model = WebhookDelivery

    dedupe_hash = factory.Sequence(lambda n: hashlib.sha256(f"delivery-{n}".encode()).hexdigest())
    event_type = "reply_received"
    lead_email = "lead@example.net"


class AlertFactory(ServiceFactory):
    class Meta:
        model = Alert

    rule = factory.Sequence(lambda n: f"rule_{n}")
    severity = "critical"
    message = "something is wrong"


class JobHeartbeatFactory(ServiceFactory):
    class Meta:
        model = JobHeartbeat
        django_get_or_create = ("name",)

    name = "scheduler"
    last_seen_at = factory.LazyFunction(timezone.now)


class PossibleDuplicateFactory(ServiceFactory):
    """Two leads that may be one property. Pass `lead_a` and `lead_b` in any order: the row stores the smaller
    id first, as the table requires."""

    class Meta:
        model = "pipeline.PossibleDuplicate"

    lead_a = factory.SubFactory(LeadFactory)
    lead_b = factory.SubFactory(LeadFactory)
    key = "addr_hash"
    reason = factory.LazyAttribute(
        lambda o: f"same address as lead {o.lead_b.pk}, APN {o.lead_a.apn} ≠ {o.lead_b.apn}"
    )
    upload = factory.SubFactory(UploadFactory)

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        pair = sorted((kwargs["lead_a"], kwargs["lead_b"]), key=lambda lead: str(lead.pk))
        kwargs["lead_a"], kwargs["lead_b"] = pair
        return super()._create(model_class, *args, **kwargs)
