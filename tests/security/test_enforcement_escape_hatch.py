"""The rollback plan's escape hatch: signature enforcement off only while a near-future end time is set."""

from datetime import UTC, datetime, timedelta

import pytest

from tests.factories import PartnerKeyFactory
from tests.security.signing_helpers import post_upload, rfc3339

BODY = b"mak,address,city,state,zip\nHATCH-1,1 Main St,San Diego,CA,92101\n"


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    settings.HMAC_SECRET_KEY = ""


def until(hours: float) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("disabled_until", "expected"),
    [
        ("", 401),  # normal: enforced
        (until(1), 202),  # escape hatch on for the next hour
        (until(48), 401),  # too far ahead: refused, enforcement stays on
        (until(-1), 401),  # expired
        ("next tuesday", 401),  # unparseable
    ],
)
def test_bad_signature_passes_only_while_the_hatch_is_validly_open(client, settings, disabled_until, expected):
    settings.SIGNATURE_ENFORCEMENT_DISABLED_UNTIL = disabled_until
    key = PartnerKeyFactory()
    response = post_upload(client, "not-the-secret-at-all-but-long-enough-000000", BODY, key_id=key.key_id)
    assert response.status_code == expected


@pytest.mark.django_db
def test_keys_and_content_hash_are_enforced_even_with_the_hatch_open(client, settings):
    settings.SIGNATURE_ENFORCEMENT_DISABLED_UNTIL = until(1)
    key = PartnerKeyFactory()
    assert post_upload(client, key.plain_secret, BODY, key_id="pk_unknown").status_code == 401
    tampered = post_upload(client, key.plain_secret, BODY, key_id=key.key_id, content_sha256="0" * 64)
    assert tampered.status_code == 400
    old = post_upload(
        client,
        "wrong-secret-000000000000000000000000000000",
        BODY + b"X,2 A St,B,CA,90001\n",
        key_id=key.key_id,
        timestamp=rfc3339(offset_seconds=-3600),
    )
    assert old.status_code == 202
