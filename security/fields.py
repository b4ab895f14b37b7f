"""Model fields that keep personal data encrypted at rest (security/pii.py): the column holds
`<key id>:<base64>`, Python sees the plaintext, so ORM code keeps working.

- `EncryptedTextField(kind=…)`: a text column (e-mail, phone, free-text notes). Encrypts on every write,
  decrypts on read (`values()` and `values_list()` too). Rows written without a key (the seed's `upsert_lead()`,
  which runs in the database) hold plaintext until the sweep (leads/contact_indexes.py) encrypts them: a value
  that is not a token is read as it is.
- `EncryptedJSONField(kind=…)`: a JSON document (a DLQ payload, a webhook delivery) stored as
  `{"encrypted": "<token>"}`; a document without that one key (written by SQL, holding no contact data) is read
  as it is.

Lookups that would compare ciphertext raise `EncryptedLookupError`: `exact`/`iexact`/`in` with a value,
`contains`, `startswith`, … An exact match on the empty string and `isnull` stay (emptiness is not encrypted).
Exact lookups go through the blind indexes (`email_bidx`, `phone_bidx`, …; leads/contact_indexes.py).
"""

from __future__ import annotations

import json
import re

from django.db import models
from django.db.models.lookups import Exact, IsNull

from . import pii
from .pii import codec

SEALED_KEY = "encrypted"
# What a token looks like: a key id, a colon, base64url of at least a nonce and a tag.
_TOKEN = re.compile(r"[A-Za-z0-9]{1,32}:[A-Za-z0-9_=-]{38,}")


class EncryptedLookupError(TypeError):
    """A lookup that would compare ciphertext: use the blind index (leads/contact_indexes.py `indexes_of`)."""


def looks_encrypted(value: str | None) -> bool:
    return bool(value) and _TOKEN.fullmatch(value) is not None


def decrypt_stored(value: str | None, kind: str, *, with_codec=None) -> str | None:
    """A stored value in plaintext: a token is decrypted (PiiUnavailable if no configured key opens it);
    plaintext left by the seed's SQL (until the sweep encrypts it) is returned as it is. `with_codec`: the codec,
    for a caller opening many values (reading the keys once)."""
    if not value or not looks_encrypted(value):
        return value
    return (with_codec or codec()).decrypt(value, kind)


# Event detail keys that hold a person's free text (a broker's note, a do-not-contact reason, a lead's reply): sealed
# when the event is recorded (`seal_note`), opened for the people who may read the timeline (`open_notes`).
NOTE_KEYS = ("note", "reason", "reply_snippet", "reply_subject")


def seal_note(text: str | None) -> str | None:
    """A free-text note as it goes into an event's detail: encrypted (kind `notes`); empty stays empty."""
    return codec().encrypt(text, pii.NOTES) if text else text


def open_notes(data: dict) -> dict:
    """An event's detail with its sealed notes decrypted (a note no configured key opens reads as unreadable)."""
    if not isinstance(data, dict) or not any(looks_encrypted(data.get(key)) for key in NOTE_KEYS):
        return data
    opened = dict(data)
    for key in NOTE_KEYS:
        if looks_encrypted(opened.get(key)):
            try:
                opened[key] = codec().decrypt(opened[key], pii.NOTES)
            except pii.PiiUnavailable:
                opened[key] = "(unreadable: encrypted under a key that is no longer configured)"
    return opened


def seal_document(document, kind: str) -> dict:
    """A JSON-able document as `{"encrypted": token}`."""
    return {SEALED_KEY: codec().encrypt(json.dumps(document, ensure_ascii=False, separators=(",", ":")), kind)}


def open_document(document, kind: str):
    """A stored document in plaintext (a sealed one decrypted, any other as it is)."""
    if isinstance(document, dict) and len(document) == 1 and isinstance(document.get(SEALED_KEY), str):
        return json.loads(codec().decrypt(document[SEALED_KEY], kind))
    return document


class _EmptyOnlyExact(Exact):
    """`field=""` (or None) is allowed; any other value would compare ciphertext."""

    def __init__(self, lhs, rhs):
        if rhs not in ("", None):
            raise EncryptedLookupError(
                f"{getattr(lhs, 'target', lhs)} is encrypted: look it up by its blind index, not by value"
            )
        super().__init__(lhs, rhs)

    def get_db_prep_lookup(self, value, connection):
        return ("%s", [value])  # "" stays "" (not encrypted)


class _EncryptedMixin:
    kind: str

    def get_lookup(self, lookup_name):
        if lookup_name == "exact":
            return _EmptyOnlyExact
        if lookup_name == "isnull":
            return IsNull
        field = self

        def refuse(*args, **kwargs):
            raise EncryptedLookupError(f"{field.name} is encrypted: `{lookup_name}` would compare ciphertext")

        return refuse

    def get_transform(self, name):
        return None

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs["kind"] = self.kind
        return name, path, args, kwargs


class EncryptedTextField(_EncryptedMixin, models.TextField):
    description = "Text encrypted with AES-GCM (security/pii.py)"

    def __init__(self, *args, kind: str, **kwargs):
        self.kind = kind
        super().__init__(*args, **kwargs)

    def from_db_value(self, value, expression, connection):
        return decrypt_stored(value, self.kind)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return codec().encrypt(value, self.kind)


class EncryptedJSONField(_EncryptedMixin, models.JSONField):
    description = "A JSON document encrypted with AES-GCM (security/pii.py)"

    def __init__(self, *args, kind: str, **kwargs):
        self.kind = kind
        super().__init__(*args, **kwargs)

    def from_db_value(self, value, expression, connection):
        return open_document(super().from_db_value(value, expression, connection), self.kind)

    def get_prep_value(self, value):
        if value is None:
            return super().get_prep_value(value)
        return super().get_prep_value(seal_document(value, self.kind))
