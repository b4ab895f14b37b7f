"""Shared set-up for the jobs/feeder/Instantly/webhook tests: the fake Instantly server as a
fixture, queued leads made in bulk, and a second database connection."""

from __future__ import annotations

import pytest
from django.db import connection

from equity_connect.db import service_context
from leads.models import Lead
from tests.factories import BrokerFactory, LeadFactory
from tests.fakes.instantly import FakeInstantly

CAMPAIGN_ID = "019cc043-e39c-7d91-a325-6615db0e1b14"


@pytest.fixture
def fake_instantly(settings):
    """A fake Instantly on 127.0.0.1, with the settings pointing at it (fast retries, short timeouts)."""
    with FakeInstantly() as fake:
        settings.INSTANTLY_API_URL = fake.url
        settings.INSTANTLY_API_KEY = fake.api_key
        settings.INSTANTLY_CAMPAIGN_ID = CAMPAIGN_ID
        settings.INSTANTLY_BACKOFF_SECONDS = 0.01
        settings.INSTANTLY_BACKOFF_MAX_SECONDS = 0.05
        settings.INSTANTLY_READ_TIMEOUT_SECONDS = 5.0  # a busy machine is slow; timeouts are tested in test_instantly
        settings.INSTANTLY_CONNECT_TIMEOUT_SECONDS = 1.0
        settings.INSTANTLY_MAX_ATTEMPTS = 3
        yield fake


def queued_leads(count: int, *, broker=None, scores=None, **fields) -> list[Lead]:
    """`count` contactable, queued, never-fed leads (one broker), created in one INSERT."""
    broker = broker or BrokerFactory()
    built = LeadFactory.build_batch(count, contactable=True, assigned_broker=broker, **fields)
    for index, lead in enumerate(built):
        if scores is not None:
            lead.lead_score = scores[index]
    with service_context():
        return Lead.objects.bulk_create(built)


def mv_refresh() -> None:
    with service_context(), connection.cursor() as cursor:
        cursor.execute("SELECT refresh_contactable_leads()")
        assert cursor.fetchone()[0] is True
