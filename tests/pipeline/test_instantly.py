"""The Instantly client against a real HTTP server on 127.0.0.1 that plays Instantly (tests/fakes)."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from pipeline.campaigns.instantly import ALREADY_IN_CAMPAIGN, InstantlyClient, _retry_after_seconds, skip_reason
from tests.fakes.instantly import ADD_PATH, FakeInstantly

CAMPAIGN = "campaign-1"


@pytest.fixture
def fake():
    with FakeInstantly() as server:
        yield server


def client_for(fake, **options) -> InstantlyClient:
    waits = []

    def sleep(seconds):  # the client's backoff: recorded, not spent
        waits.append(seconds)

    defaults = {
        "api_url": fake.url,
        "api_key": fake.api_key,
        "campaign_id": CAMPAIGN,
        "read_timeout": 5.0,  # a busy machine is slow; tests of timeouts pass their own
        "connect_timeout": 1.0,
        "max_attempts": 3,
        "backoff_seconds": 0.01,
        "backoff_max_seconds": 0.5,
        "sleep": sleep,
    }
    client = InstantlyClient(**{**defaults, **options})
    client.waits = waits
    return client


def leads(count: int, prefix: str = "lead") -> list[dict]:
    return [
        {"email": f"{prefix}{i}@example.net", "first_name": f"F{i}", "custom_variables": {"ec_lead_id": str(i)}}
        for i in range(count)
    ]


def emails(count: int, prefix: str = "lead") -> list[str]:
    return [f"{prefix}{i}@example.net" for i in range(count)]


def each(emails: list[str], times: int) -> Counter:
    return Counter(dict.fromkeys(emails, times))


def test_batches_of_at_most_1000_and_created_leads_mapped_back_by_index(fake):
    result = client_for(fake).add_leads(leads(2500))

    sizes = [len(request["body"]["leads"]) for request in fake.add_requests()]
    assert sizes == [1000, 1000, 500]
    assert len(fake.requests) == 3  # nothing but the three adds
    assert fake.lead_adds_received() == each(emails(2500), 1)  # every lead sent exactly once
    assert fake.created_count(CAMPAIGN) == each(emails(2500), 1)
    assert len(result.created) == 2500 and not result.skipped and not result.failed_batches
    # index i of the whole list is the lead that was at position i: its Instantly id is the one the
    # server created for that email
    by_email = fake.lead_ids(CAMPAIGN)
    assert all(result.created[i] == by_email[f"lead{i}@example.net"] for i in range(2500))


def test_request_shape_bearer_key_campaign_and_skip_if_in_campaign(fake):
    client_for(fake).add_leads(leads(2))

    [request] = fake.requests  # one call, and it is the add
    assert (request["method"], request["path"]) == ("POST", ADD_PATH)
    assert request["headers"]["Authorization"] == f"Bearer {fake.api_key}"
    assert request["body"]["campaign_id"] == CAMPAIGN
    assert request["body"]["skip_if_in_campaign"] is True
    assert request["body"]["leads"][1]["custom_variables"] == {"ec_lead_id": "1"}


def test_429_then_success_honours_retry_after(fake):
    fake.script("429:0.2", "ok")
    client = client_for(fake, backoff_seconds=0.001)

    result = client.add_leads(leads(3))

    assert [r["status"] for r in fake.requests] == [429, 200]
    assert fake.lead_adds_received() == each(emails(3), 2)  # sent twice: the 429 and the retry
    assert fake.created_count(CAMPAIGN) == each(emails(3), 1)  # added once
    assert len(result.created) == 3
    assert result.batches[0].attempts == 2
    assert client.waits[0] >= 0.2  # Retry-After wins over the (tiny) jittered backoff


def test_429_without_retry_after_backs_off_with_jitter(fake):
    fake.script("429", "429", "ok")
    client = client_for(fake, backoff_seconds=0.05, max_attempts=3)

    result = client.add_leads(leads(1))

    assert len(result.created) == 1
    assert fake.lead_adds_received() == each(emails(1), 3) and fake.created_count(CAMPAIGN) == each(emails(1), 1)
    assert len(client.waits) == 2
    assert 0 <= client.waits[0] <= 0.05 and 0 <= client.waits[1] <= 0.1  # full jitter under 2^n ceilings


def test_three_5xx_is_a_final_failure_with_nothing_created(fake):
    fake.script("500", "502", "503")

    result = client_for(fake).add_leads(leads(5))

    assert [r["status"] for r in fake.requests] == [500, 502, 503]
    assert fake.lead_adds_received() == each(emails(5), 3) and fake.lead_adds_processed() == Counter()
    batch = result.batches[0]
    assert batch.failed and batch.attempts == 3 and batch.status_code == 503
    assert "HTTP 503" in batch.error
    assert result.created == {} and fake.created_emails(CAMPAIGN) == []


def test_timeout_is_retried(fake):
    fake.script("slow-nocreate:1.0", "ok")

    started = time.monotonic()
    result = client_for(fake, read_timeout=0.2).add_leads(leads(2))

    assert len(result.created) == 2 and result.batches[0].attempts == 2
    assert time.monotonic() - started < 1.0  # the client did not wait for the slow answer
    assert fake.lead_adds_received() == each(emails(2), 2)
    assert fake.created_count(CAMPAIGN) == each(emails(2), 1)


def test_timeouts_until_the_last_attempt_fail_the_batch(fake):
    fake.script("slow-nocreate:0.6", "slow-nocreate:0.6", "slow-nocreate:0.6")

    result = client_for(fake, read_timeout=0.15).add_leads(leads(2))

    assert result.batches[0].failed and "timed out" in result.batches[0].error
    assert fake.lead_adds_received() == each(emails(2), 3)  # max_attempts, not one more


def test_a_timeout_after_instantly_created_the_leads_never_adds_them_twice(fake):
    # The first answer comes too late: Instantly created the leads, we retried, it skips them.
    fake.script("slow:0.5")

    def backoff(seconds):  # the wait before the retry lasts until Instantly has finished the first request
        fake.wait_answered(at_least=1)

    result = client_for(fake, read_timeout=0.1, sleep=backoff).add_leads(leads(2))
    fake.wait_answered(at_least=2)  # nothing still in flight: a late second add would be counted below

    assert fake.created_count(CAMPAIGN) == each(emails(2), 1)  # Instantly holds each lead once...
    assert fake.lead_adds_received() == each(emails(2), 2)  # ...though each was sent twice...
    assert fake.lead_adds_processed() == each(emails(2), 2)  # ...and both adds reached it
    sent = fake.add_requests()
    assert len(fake.requests) == len(sent) == 2  # the request that timed out and one retry
    assert [request["body"]["skip_if_in_campaign"] for request in sent] == [True, True]
    assert not result.failed_batches and result.batches[0].attempts == 2
    assert result.created == {}  # the retry created nothing: it found both already in the campaign
    assert result.skipped == {0: ALREADY_IN_CAMPAIGN, 1: ALREADY_IN_CAMPAIGN}


def test_skipped_leads_are_reported_with_the_reason(fake):
    fake.blocklist.add("blocked@example.net")
    batch = [{"email": "ok@example.net"}, {"email": "blocked@example.net"}, {"email": "ok2@example.net"}]

    result = client_for(fake).add_leads(batch)

    assert set(result.created) == {0, 2}
    assert result.skipped == {1: "on Instantly's blocklist"}
    assert len(fake.requests) == 1
    assert fake.lead_adds_received() == each(["ok@example.net", "blocked@example.net", "ok2@example.net"], 1)


def test_several_skip_reasons_are_all_named():
    payload = {"in_blocklist": 1, "invalid_email_count": 2, "duplicated_leads": 0}
    assert skip_reason(payload) == "one of: on Instantly's blocklist (1), invalid email address (2)"
    assert skip_reason({"duplicated_leads": 3}) == ALREADY_IN_CAMPAIGN


def test_a_4xx_other_than_429_is_not_retried(fake):
    result = client_for(fake, api_key="wrong-key").add_leads(leads(1))

    assert len(fake.requests) == 1 and fake.lead_adds_received() == each(emails(1), 1)
    assert result.batches[0].failed and result.batches[0].status_code == 401


def test_without_an_api_key_it_is_a_dry_run_and_sends_nothing(fake):
    client = client_for(fake, api_key="")

    result = client.add_leads(leads(3))

    assert client.dry_run and result.dry_run
    assert fake.requests == []
    assert result.created == {}


def test_retry_after_as_seconds_or_http_date():
    assert _retry_after_seconds("7") == 7.0
    assert _retry_after_seconds(None) is None
    assert _retry_after_seconds("soon") is None
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 <= _retry_after_seconds(later) <= 31
