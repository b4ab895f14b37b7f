"""Seed Phase 5: the backfill commands reproduce the seed's mapping and are idempotent."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from equity_connect.db import service_context
from equity_connect.models import PipelineEvent
from leads.models import Lead
from tests.factories import LeadFactory

pytestmark = pytest.mark.django_db

SEED_MAPPING = {
    "new": "new",
    "contacted": "active",
    "replied": "replied",
    "qualified": "active",
    "appointment_set": "converted",
    "showed": "converted",
    "application": "converted",
    "funded": "converted",
    "closed_lost": "do_not_contact",
    "something_else": "new",
    None: "new",
}


def run(command, *args):
    out = StringIO()
    call_command(command, *args, stdout=out)
    return out.getvalue()


def test_backfill_campaign_status_maps_like_the_seed_and_is_idempotent():
    leads = {status: LeadFactory(status=status) for status in SEED_MAPPING}
    untouched = LeadFactory(status="contacted", campaign_status="paused")  # already set: left alone
    with service_context(), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE leads SET campaign_status = NULL WHERE id = ANY(%s)", [[lead.pk for lead in leads.values()]]
        )
    output = run("backfill_campaign_status")
    assert f"backfilled campaign_status on {len(SEED_MAPPING)} lead(s)" in output
    assert "converted: 4" in output
    with service_context():
        for status, lead in leads.items():
            assert Lead.objects.get(pk=lead.pk).campaign_status == SEED_MAPPING[status], status
        assert Lead.objects.get(pk=untouched.pk).campaign_status == "paused"
    assert "backfilled campaign_status on 0 lead(s)" in run("backfill_campaign_status")


def test_init_verification_flags_follows_the_seed_and_is_idempotent():
    both = LeadFactory(email="a@example.com", phone="+14155550100")
    empty = LeadFactory(email="", phone=None)
    verified = LeadFactory(email="v@example.com", phone="+14155550101", email_verified=True, phone_verified=True)
    output = run("init_verification_flags")
    assert "phone_verified set on 1 lead(s)" in output
    assert "email_verified set on 1 lead(s)" in output
    with service_context():
        assert Lead.objects.filter(pk=both.pk, email_verified=True, phone_verified=True).exists()
        assert Lead.objects.filter(pk=empty.pk, email_verified=False, phone_verified=False).exists()
        assert Lead.objects.filter(pk=verified.pk, email_verified=True, phone_verified=True).exists()
    again = run("init_verification_flags")
    assert "phone_verified set on 0 lead(s)" in again and "email_verified set on 0 lead(s)" in again


def test_init_verification_flags_refuses_with_leads_in_campaigns_unless_forced():
    fed = LeadFactory(email="fed@example.com", phone=None, added_to_campaign_at=timezone.now())
    fresh = LeadFactory(email="new@example.com", phone="+14155550102")

    preview = run("init_verification_flags", "--dry-run")
    with pytest.raises(CommandError, match="1 lead\\(s\\) are already in campaigns"):
        run("init_verification_flags")
    with service_context():
        untouched = Lead.objects.filter(email_verified=False).count()
    forced = run("init_verification_flags", "--force")

    assert "phone_verified would be set on 1 lead(s)" in preview
    assert "email_verified would be set on 2 lead(s)" in preview and "1 lead(s) are in campaigns" in preview
    assert untouched == 2  # neither the dry run nor the refusal changed a lead
    assert "email_verified set on 2 lead(s)" in forced
    with service_context():
        assert Lead.objects.filter(pk__in=[fed.pk, fresh.pk], email_verified=True).count() == 2
        verified = PipelineEvent.objects.filter(event_type="lead_verified")
        assert sorted((str(e.lead_id), e.event_data["channels"][0]) for e in verified) == sorted(
            [(str(fed.pk), "email"), (str(fresh.pk), "email"), (str(fresh.pk), "phone")]
        )
