"""Offboarding a broker (leads/brokers.py): the broker is deactivated, every lead they held moves to the broker
chosen in one set-based statement that also writes each lead's `lead_reassigned` event, and the reason reads on
each lead's timeline (for the new broker too, through RLS)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from equity_connect.db import broker_context, service_context
from equity_connect.models import PipelineEvent
from leads.brokers import BrokerOffboardError, broker_offboard, broker_offboard_preview
from leads.models import Lead
from leads.timeline import lead_timeline
from security.models import Broker
from tests.factories import BrokerFactory, LeadFactory, PartnerKeyFactory, StaffUserFactory

pytestmark = pytest.mark.django_db


def offboard(broker, to_broker, reason="Left the company on 30 November", user=None):
    with service_context():
        return broker_offboard(broker=broker, to_broker=to_broker, reason=reason, user=user)


def test_offboarding_deactivates_and_moves_every_lead_with_the_reason_on_each_timeline():
    leaving, taking, other = BrokerFactory(name="Leaving Lou"), BrokerFactory(name="Taking Tia"), BrokerFactory()
    moved = LeadFactory.create_batch(3, assigned_broker=leaving)
    stays = LeadFactory(assigned_broker=other)
    user = StaffUserFactory(email="ops-lead@example.com")

    result = offboard(leaving, taking, user=user)

    assert result.leads_moved == 3 and result.broker.active is False
    with service_context():
        assert Broker.objects.get(pk=leaving.pk).active is False
        assert Broker.objects.get(pk=taking.pk).active is True
        assert set(Lead.objects.filter(assigned_broker=taking).values_list("pk", flat=True)) == {m.pk for m in moved}
        assert Lead.objects.get(pk=stays.pk).assigned_broker_id == other.pk
        events = list(PipelineEvent.objects.filter(event_type="lead_reassigned"))
        [summary] = PipelineEvent.objects.filter(event_type="broker_offboarded")
    assert {event.lead_id for event in events} == {m.pk for m in moved}
    assert {event.broker_id for event in events} == {taking.pk}
    # The reason is a free-text note: sealed on the event trail, opened on the timeline.
    assert all("Left the company" not in str(event.event_data) for event in events)
    assert summary.broker_id == leaving.pk and summary.event_data["leads_moved"] == 3
    assert summary.event_data["by"] == "ops-lead@example.com"

    # The new broker reads the move and its reason on the lead's own timeline (RLS: the event carries their id).
    with broker_context(taking.pk):
        lead = Lead.objects.for_broker(taking).get(pk=moved[0].pk)
        [entry] = [entry for entry in lead_timeline(lead=lead) if entry.event_type == "lead_reassigned"]
    assert entry.label == "Reassigned to another broker"
    assert entry.details == ("from Leaving Lou to Taking Tia", "Left the company on 30 November")
    with broker_context(leaving.pk):  # the old broker keeps no view of the moved leads
        assert not Lead.objects.filter(pk__in=[m.pk for m in moved]).exists()


def test_the_reassignment_is_one_statement_whatever_the_number_of_leads():
    def statements(count: int) -> list[str]:
        leaving, taking = BrokerFactory(), BrokerFactory()
        LeadFactory.create_batch(count, assigned_broker=leaving)
        with service_context(), CaptureQueriesContext(connection) as captured:
            result = broker_offboard(broker=leaving, to_broker=taking, reason="moved away")
        assert result.leads_moved == count
        return [query["sql"] for query in captured.captured_queries]

    few, many = statements(2), statements(40)
    assert len(few) == len(many)
    [reassign] = [sql for sql in many if "UPDATE leads" in sql]
    assert "INSERT INTO pipeline_events" in reassign  # the events are written by the same statement
    assert sum("lead_reassigned" in sql for sql in many) == 1


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("no reason", "Give the reason"),
        ("same broker", "not the one leaving"),
        ("inactive target", "is inactive"),
        ("nowhere to go", "still has leads"),
    ],
)
def test_an_offboarding_that_cannot_be_done_says_why_and_changes_nothing(case, message):
    leaving = BrokerFactory()
    lead = LeadFactory(assigned_broker=leaving)
    target = {
        "no reason": BrokerFactory(),
        "same broker": leaving,
        "inactive target": BrokerFactory(active=False),
        "nowhere to go": None,
    }[case]
    with pytest.raises(BrokerOffboardError, match=message):
        offboard(leaving, target, reason="" if case == "no reason" else "left")
    with service_context():
        assert Broker.objects.get(pk=leaving.pk).active is True
        assert Lead.objects.get(pk=lead.pk).assigned_broker_id == leaving.pk
        assert not PipelineEvent.objects.filter(event_type__in=("lead_reassigned", "broker_offboarded")).exists()


def test_a_broker_without_leads_is_offboarded_without_a_target_and_the_preview_names_their_keys():
    leaving = BrokerFactory()
    key = PartnerKeyFactory(default_broker=leaving)
    with service_context():
        preview = broker_offboard_preview(broker=leaving)
    assert preview.leads == 0 and preview.partner_keys == [key.key_id]
    result = offboard(leaving, None)
    assert result.leads_moved == 0 and result.broker.active is False
