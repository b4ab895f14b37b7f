"""security/pii.py: AES-GCM values with key ids, rotation, versioned blind indexes."""

import base64

import pytest

from security import pii

KEY_A = pii._parse_keys([pii.new_key_entry("a1")], "test")
KEY_B = pii._parse_keys([pii.new_key_entry("b2")], "test")
INDEX_1 = pii._parse_keys([pii.new_key_entry("1")], "test")
INDEX_2 = pii._parse_keys([pii.new_key_entry("2")], "test")


def make(encryption=KEY_A, blind_index=INDEX_1) -> pii.PiiCodec:
    return pii.PiiCodec(pii.CodecKeys(encryption=encryption, blind_index=blind_index))


def test_round_trip_with_key_id_prefix_and_fresh_nonces():
    codec = make()
    first = codec.encrypt("jane@example.com", pii.EMAIL)
    second = codec.encrypt("jane@example.com", pii.EMAIL)
    assert first.startswith("a1:") and first != second
    assert "jane" not in first
    assert codec.decrypt(first, pii.EMAIL) == "jane@example.com"
    assert codec.encrypt(None, pii.EMAIL) is None and codec.encrypt("", pii.EMAIL) == ""


def test_a_value_moved_to_another_column_or_tampered_with_does_not_decrypt():
    codec = make()
    token = codec.encrypt("+15551234567", pii.PHONE)
    with pytest.raises(pii.PiiUnavailable):
        codec.decrypt(token, pii.EMAIL)
    key_id, body = token.split(":", 1)
    sealed = bytearray(base64.urlsafe_b64decode(body))
    sealed[len(sealed) // 2] ^= 1  # one bit of the ciphertext
    tampered = f"{key_id}:{base64.urlsafe_b64encode(bytes(sealed)).decode()}"
    with pytest.raises(pii.PiiUnavailable):
        codec.decrypt(tampered, pii.PHONE)
    with pytest.raises(pii.PiiUnavailable, match="not encrypted"):
        codec.decrypt("+15551234567", pii.PHONE)


def test_rotation_new_key_first_old_values_still_decrypt_and_reencrypt_moves_them():
    old = make(encryption=KEY_A)
    token = old.encrypt("jane@example.com", pii.EMAIL)
    rotated = make(encryption=KEY_B + KEY_A)
    assert not rotated.is_current(token)
    assert rotated.decrypt(token, pii.EMAIL) == "jane@example.com"
    moved = rotated.reencrypt(token, pii.EMAIL)
    assert moved.startswith("b2:") and rotated.is_current(moved)
    assert make(encryption=KEY_B).decrypt(moved, pii.EMAIL) == "jane@example.com"
    with pytest.raises(pii.PiiUnavailable, match="a1"):
        make(encryption=KEY_B).decrypt(token, pii.EMAIL)


def test_blind_indexes_are_deterministic_per_kind_and_versioned():
    codec = make()
    index = codec.blind_index("jane@example.com", pii.EMAIL)
    assert index == codec.blind_index("jane@example.com", pii.EMAIL)
    assert index.startswith("1:") and len(index) == 2 + 32
    assert index != codec.blind_index("jane@example.com", pii.EMAIL_DOMAIN)
    assert index != make(blind_index=pii._parse_keys([pii.new_key_entry("1")], "t")).blind_index(
        "jane@example.com", pii.EMAIL
    )
    assert codec.blind_index(None, pii.EMAIL) is None and codec.blind_indexes("", pii.EMAIL) == []


def test_an_entry_indexed_under_an_old_version_still_matches_after_a_new_version():
    stored = make(blind_index=INDEX_1).blind_index("+15551234567", pii.PHONE)
    later = make(blind_index=INDEX_2 + INDEX_1)
    assert later.blind_index("+15551234567", pii.PHONE).startswith("2:")
    assert stored in later.blind_indexes("+15551234567", pii.PHONE)


@pytest.mark.parametrize(
    "entries, message",
    [
        (["nokey"], "id:base64"),
        (["k1:not base64!"], "base64"),
        (["k1:" + "QUJD"], "32 bytes"),
        ([pii.new_key_entry("k1"), pii.new_key_entry("k1")], "twice"),
        ([], "no key"),
    ],
)
def test_malformed_key_settings_are_named_without_the_key(entries, message):
    with pytest.raises(pii.PiiConfigError, match=message) as caught:
        pii._parse_keys(entries, "PII_ENCRYPTION_KEYS")
    assert "PII_ENCRYPTION_KEYS" in str(caught.value)


def test_helpers_for_domain_and_last_four():
    assert pii.email_domain("jane@Example.com".lower()) == "example.com"
    assert pii.email_domain(None) is None and pii.email_domain("nope") is None
    assert pii.phone_last4("+15551234567") == "4567" and pii.phone_last4("+1") is None


def test_codec_from_settings_follows_the_settings(settings):
    settings.PII_ENCRYPTION_KEYS = [pii.new_key_entry("s1")]
    first = pii.codec()
    assert first.current_key_id == "s1"
    settings.PII_ENCRYPTION_KEYS = [pii.new_key_entry("s2"), *settings.PII_ENCRYPTION_KEYS]
    assert pii.codec().current_key_id == "s2"
    settings.PII_ENCRYPTION_KEYS = []
    assert pii.codec().current_key_id == "dev"
