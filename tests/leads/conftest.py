"""Fixtures of the portal, consent and accounts tests: two brokers with their own leads, and users. (`axes_clean`,
a clean django-axes state around a test, is in tests/conftest.py.)"""

from __future__ import annotations

import pytest

from tests.factories import BrokerFactory, LeadFactory, StaffUserFactory, UserFactory


@pytest.fixture
def broker_a(db):
    return BrokerFactory(name="Alice Broker", email="alice@brokers.example")


@pytest.fixture
def broker_b(db):
    return BrokerFactory(name="Bob Broker", email="bob@brokers.example")


@pytest.fixture
def lead_a(broker_a):
    return LeadFactory(assigned_broker=broker_a, first_name="Ada", last_name="Own")


@pytest.fixture
def lead_b(broker_b):
    return LeadFactory(assigned_broker=broker_b, first_name="Bea", last_name="Other")


@pytest.fixture
def staff_user(db):
    return StaffUserFactory(email="ops@staff.example")


@pytest.fixture
def plain_user(db):
    return UserFactory(email="nobody@example.com")


@pytest.fixture
def client_for(client):
    """`client_for(user_or_broker_or_None)`: the test client logged in as that user (None: anonymous)."""

    def login(who):
        if who is None:
            return client
        user = getattr(who, "user", who)
        client.force_login(user)
        return client

    return login


@pytest.fixture
def contact_windows(db):
    """The contact-window table as migration 0011 seeds it (a transactional test elsewhere may have emptied it)."""
    from datetime import time

    from equity_connect.db import service_context
    from leads.compliance.zones import STATES
    from leads.models import ContactWindow

    rows = [
        ContactWindow(state=state, channel=channel, start=time(8), end=time(21))
        for state in STATES
        for channel in ("phone", "sms")
    ]
    with service_context():
        ContactWindow.objects.bulk_create(rows, ignore_conflicts=True)
