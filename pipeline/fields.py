"""`JSONTextField`: JSON stored as `json` (the text as written, validated), not `jsonb`."""

from django.db import models

from security.fields import open_document, seal_document
from security.pii import RAW_ROW


class JSONTextField(models.JSONField):
    """A JSONField whose column is `json`: PostgreSQL checks that the text is JSON but keeps it as text
    instead of building the binary `jsonb` form, which costs about a third of the COPY into
    `leads_staging` (each row carries its raw CSV row as JSON) and is never needed there: the rare
    rejected row is cast to `jsonb` when it moves to the DLQ. Python sees the same values as a JSONField.
    Key lookups (`raw__name`) are not supported on it; nothing queries inside the raw row."""

    def db_type(self, connection):
        return "json"

    def from_db_value(self, value, expression, connection):
        if value is None or not isinstance(value, str | bytes | bytearray):
            return value  # psycopg's own `json` loader already parsed it
        return super().from_db_value(value, expression, connection)

    def get_placeholder(self, value, compiler, connection):
        return "%s::json"  # the adapter sends jsonb; there is no implicit jsonb → json assignment


class EncryptedRawRowField(JSONTextField):
    """`leads_staging.raw`: the raw row as the normaliser seals it, `{"encrypted": "<token>"}` (kind
    `raw_row`, security/pii.py): a partner's row holds e-mail and phone. Python sees the row again."""

    def from_db_value(self, value, expression, connection):
        return open_document(super().from_db_value(value, expression, connection), RAW_ROW)

    def get_prep_value(self, value):
        return super().get_prep_value(None if value is None else seal_document(value, RAW_ROW))
