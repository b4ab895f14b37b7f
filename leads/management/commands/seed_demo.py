"""Local demo data: an ops user, two brokers, a partner key, and a few thousand leads. Idempotent."""

from __future__ import annotations

import hashlib
import random
from datetime import timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.utils import timezone

from equity_connect.db import service_context
from leads.models import CampaignStatus, Lead, VerificationChannel, VerificationCodeMap
from leads.scoring import leads_rescore
from security.models import Broker, PartnerKey, PartnerKeyStatus
from security.services import partner_get_or_create, partner_key_create, partner_key_secret

DEMO_PASSWORD = "demo-pass-123"  # noqa: S105  (local demo only; documented in the README)
DEMO_SOURCE = "demo"
BROKERS = [
    ("broker1@example.com", "Dana Whitfield", ["CA", "NV", "AZ"], ["90", "91", "92"]),
    ("broker2@example.com", "Marcus Ortega", ["TX", "FL", "OR"], ["77", "33"]),
]
VERIFICATION_CODES = [
    ("email", "ES01", True, "Valid domain and mailbox"),
    ("email", "ES02", True, "Valid domain, mailbox probable"),
    ("email", "EE01", False, "Syntax error"),
    ("email", "EE04", False, "Mailbox does not exist"),
    ("phone", "PS01", True, "Valid phone number"),
    ("phone", "PS02", True, "Valid, carrier confirmed"),
    ("phone", "PE01", False, "Disconnected"),
    ("phone", "PE02", False, "Invalid number"),
]
STATUS_WEIGHTS = {
    CampaignStatus.NEW: 30,
    CampaignStatus.QUEUED: 25,
    CampaignStatus.ACTIVE: 15,
    CampaignStatus.REPLIED: 8,
    CampaignStatus.PAUSED: 4,
    CampaignStatus.UNSUBSCRIBED: 4,
    CampaignStatus.BOUNCED: 4,
    CampaignStatus.DO_NOT_CONTACT: 5,
    CampaignStatus.CONVERTED: 5,
}


class Command(BaseCommand):
    help = "Create demo users, brokers, a partner key and leads (idempotent; local demo only)."

    def add_arguments(self, parser):
        parser.add_argument("--leads", type=int, default=3000, help="How many demo leads in total (default 3000)")
        parser.add_argument("--once", action="store_true", help="Do nothing if the demo data was loaded before")

    def handle(self, *args, **options):
        if options["once"] and get_user_model().objects.filter(username="ops@example.com").exists():
            with service_context():
                key = PartnerKey.objects.filter(label="demo", status=PartnerKeyStatus.ACTIVE).first()
            if key:
                self.stdout.write(
                    f"Demo data already loaded (demo partner key_id={key.key_id}; "
                    "`manage.py seed_demo` prints its secret again)."
                )
                return
        with service_context():
            self._users_and_brokers()
            self._verification_codes()
            key, secret = self._partner_key()
            created = self._leads(options["leads"])
        self.stdout.write(self.style.SUCCESS("Demo data ready (local demo only — never use these in production):"))
        self.stdout.write(f"  ops (staff):  ops@example.com / {DEMO_PASSWORD}")
        for email, *_ in BROKERS:
            self.stdout.write(f"  broker:       {email} / {DEMO_PASSWORD}")
        self.stdout.write(f"  partner key:  key_id={key.key_id}")
        self.stdout.write(f"                secret={secret}")
        self.stdout.write(f"  leads:        {created} created this run")

    def _users_and_brokers(self) -> None:
        users = get_user_model()
        ops, created = users.objects.get_or_create(
            username="ops@example.com", defaults={"email": "ops@example.com", "is_staff": True, "is_superuser": True}
        )
        if created:
            ops.set_password(DEMO_PASSWORD)
            ops.save()
        for email, name, states, zips in BROKERS:
            user, created = users.objects.get_or_create(
                username=email, defaults={"email": email, "first_name": name.split()[0], "last_name": name.split()[-1]}
            )
            if created:
                user.set_password(DEMO_PASSWORD)
                user.save()
            Broker.objects.update_or_create(
                email=email,
                defaults={"name": name, "user": user, "territory_states": states, "territory_zip_prefixes": zips},
            )

    def _verification_codes(self) -> None:
        for channel, code, verified, description in VERIFICATION_CODES:
            VerificationCodeMap.objects.get_or_create(
                channel=VerificationChannel(channel),
                code=code,
                defaults={"is_verified": verified, "description": description},
            )

    def _partner_key(self) -> tuple[PartnerKey, str]:
        partner = partner_get_or_create(name="Demo Partner")
        key = partner.keys.filter(status=PartnerKeyStatus.ACTIVE, label="demo").first()
        if key is None:
            broker = Broker.objects.get(email=BROKERS[0][0])
            return partner_key_create(partner=partner, default_broker=broker, label="demo")
        return key, partner_key_secret(key=key)

    def _leads(self, total: int) -> int:
        existing = Lead.objects.filter(source=DEMO_SOURCE).count()
        missing = max(0, total - existing)
        if not missing:
            return 0
        from faker import Faker

        fake = Faker("en_US")
        fake.seed_instance(4242 + existing)
        rng = random.Random(4242 + existing)  # noqa: S311  (demo data, not security)
        brokers = list(Broker.objects.order_by("email"))
        statuses = list(STATUS_WEIGHTS)
        weights = list(STATUS_WEIGHTS.values())
        now = timezone.now()
        leads = []
        for index in range(existing, existing + missing):
            broker = brokers[index % len(brokers)]
            state = rng.choice(broker.territory_states)
            status = rng.choices(statuses, weights)[0]
            consent = (
                status
                in (CampaignStatus.QUEUED, CampaignStatus.ACTIVE, CampaignStatus.REPLIED, CampaignStatus.CONVERTED)
                or rng.random() < 0.2
            )
            value = Decimal(rng.randrange(250_000, 1_800_000, 1000))
            address = fake.street_address()
            city = fake.city()
            zip5 = f"{rng.randrange(10000, 99999)}"
            email_codes = [rng.choice(["ES01", "ES02", "EE01", "EE04"])]
            phone_codes = [rng.choice(["PS01", "PS02", "PE01"])]
            created_at = now - timedelta(days=rng.randrange(0, 60), minutes=rng.randrange(0, 1440))
            leads.append(
                Lead(
                    first_name=fake.first_name(),
                    last_name=fake.last_name(),
                    email=f"demo{index}@{fake.free_email_domain()}",
                    phone=f"+1{rng.randrange(201, 989)}{rng.randrange(200, 999)}{rng.randrange(1000, 9999)}",
                    property_address=address,
                    property_city=city,
                    property_state=state,
                    property_zip=zip5,
                    property_value=value,
                    estimated_equity=(value * Decimal(rng.uniform(0.3, 1.0))).quantize(Decimal(1)),
                    property_type=rng.choice(["Single Family", "Condo", "Townhouse", "Multi-Family"]),
                    age=rng.randrange(58, 92),
                    owner_occupied=rng.random() < 0.9,
                    assigned_broker=broker,
                    lead_score=rng.randrange(5, 100),
                    campaign_status=status,
                    email_verified=email_codes[0] in ("ES01", "ES02"),
                    phone_verified=phone_codes[0] != "PE01",
                    email_verification_codes=email_codes,
                    phone_verification_codes=phone_codes,
                    mak=f"DEMO-MAK-{index:07d}",
                    apn=f"DEMO-{index:04d}-{rng.randrange(100, 999)}",
                    addr_hash=hashlib.sha256(
                        f"demo|{index}|{address}|{city}|{state}|{zip5}".lower().encode()
                    ).hexdigest(),
                    consent=consent,
                    consent_email=consent,  # the demo's consent form was for e-mail: the feeder needs it
                    consented_at=created_at + timedelta(days=1) if consent else None,
                    consent_method="form" if consent else None,
                    added_to_campaign_at=created_at + timedelta(days=2)
                    if status in (CampaignStatus.ACTIVE, CampaignStatus.REPLIED, CampaignStatus.CONVERTED)
                    else None,
                    source=DEMO_SOURCE,
                    created_at=created_at,
                )
            )
        Lead.objects.bulk_create(leads, batch_size=1000)
        leads_rescore(lead_ids=[lead.id for lead in leads])  # the real score and its breakdown (leads/scoring.py)
        return len(leads)
