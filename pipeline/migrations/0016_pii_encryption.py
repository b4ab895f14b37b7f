"""PII encrypted at rest (issue 13): what holds a partner's raw row, a contact or a person's free text is an
AES-GCM token now (security/fields.py): the staged raw row (sealed by the normaliser), staged e-mail and phone,
DLQ payloads and resolution notes, possible-duplicate notes, and the webhook deliveries' address and payload.
The column types do not change. Existing rows are encrypted here in batches, in Python (the database holds no
key); reversing decrypts them again. Documents are sealed as `{"encrypted": "<token>"}`.
"""

import json

from django.db import migrations

import pipeline.fields
import security.fields

BATCH = 2_000
CIPHERTEXT_RE = "^[A-Za-z0-9]{1,32}:[A-Za-z0-9_=-]{38,}$"
# (table, key column, column, kind, whether it holds a JSON document, its SQL type)
COLUMNS = (
    ("leads_staging", "id", "raw", "raw_row", True, "json"),
    ("leads_staging", "id", "email", "email", False, "text"),
    ("leads_staging", "id", "phone", "phone", False, "text"),
    ("pipeline_dlq", "id", "payload", "raw_row", True, "jsonb"),
    ("pipeline_dlq", "id", "resolution_note", "notes", False, "text"),
    ("possible_duplicates", "id", "note", "notes", False, "text"),
    ("webhook_deliveries", "dedupe_hash", "lead_email", "email", False, "text"),
    ("webhook_deliveries", "dedupe_hash", "payload", "raw_row", True, "jsonb"),
)


def _sealed(column: str, sql_type: str) -> str:
    """SQL: the column holds a sealed document (one key, `encrypted`, a string)."""
    return f"(jsonb_typeof({column}::jsonb -> 'encrypted') = 'string' AND (SELECT count(*) FROM jsonb_object_keys(CASE WHEN jsonb_typeof({column}::jsonb) = 'object' THEN {column}::jsonb ELSE '{{}}'::jsonb END)) = 1)"


def _convert(schema_editor, *, encrypt: bool):
    from security.fields import open_document, seal_document
    from security.pii import codec

    pii = codec()
    with schema_editor.connection.cursor() as cursor:
        for table, key, column, kind, document, sql_type in COLUMNS:
            if document:
                test = f"NOT {_sealed(column, sql_type)}" if encrypt else _sealed(column, sql_type)
            else:
                test = f"nullif({column}, '') IS NOT NULL AND {column} {'!~' if encrypt else '~'} '{CIPHERTEXT_RE}'"
            while True:
                cursor.execute(f"SELECT {key}, {column} FROM {table} WHERE {test} LIMIT %s", [BATCH])
                rows = cursor.fetchall()
                if not rows:
                    break
                if document:
                    loaded = [json.loads(value) if isinstance(value, str) else value for _, value in rows]
                    values = [
                        json.dumps(seal_document(value, kind) if encrypt else open_document(value, kind))
                        for value in loaded
                    ]
                else:
                    values = [pii.encrypt(value, kind) if encrypt else pii.decrypt(value, kind) for _, value in rows]
                key_type = "text" if key == "dedupe_hash" else "bigint"
                cursor.execute(
                    f"UPDATE {table} t SET {column} = v.value::{sql_type}"
                    f" FROM unnest(%s::{key_type}[], %s::text[]) AS v(key, value) WHERE t.{key} = v.key",
                    [[row[0] for row in rows], values],
                )


def encrypt_existing(apps, schema_editor):
    _convert(schema_editor, encrypt=True)


def decrypt_existing(apps, schema_editor):
    _convert(schema_editor, encrypt=False)


class Migration(migrations.Migration):
    dependencies = [("leads", "0014_pii_encryption"), ("pipeline", "0015_retention")]

    operations = [
        migrations.AlterField(
            model_name="leadstaging",
            name="email",
            field=security.fields.EncryptedTextField(blank=True, kind="email", null=True),
        ),
        migrations.AlterField(
            model_name="leadstaging",
            name="phone",
            field=security.fields.EncryptedTextField(blank=True, kind="phone", null=True),
        ),
        migrations.AlterField(
            model_name="leadstaging",
            name="raw",
            field=pipeline.fields.EncryptedRawRowField(),
        ),
        migrations.AlterField(
            model_name="pipelinedlq",
            name="payload",
            field=security.fields.EncryptedJSONField(default=dict, kind="raw_row"),
        ),
        migrations.AlterField(
            model_name="pipelinedlq",
            name="resolution_note",
            field=security.fields.EncryptedTextField(blank=True, default="", kind="notes"),
        ),
        migrations.AlterField(
            model_name="possibleduplicate",
            name="note",
            field=security.fields.EncryptedTextField(blank=True, default="", kind="notes"),
        ),
        migrations.AlterField(
            model_name="webhookdelivery",
            name="lead_email",
            field=security.fields.EncryptedTextField(blank=True, default="", kind="email"),
        ),
        migrations.AlterField(
            model_name="webhookdelivery",
            name="payload",
            field=security.fields.EncryptedJSONField(default=dict, kind="raw_row"),
        ),
        migrations.RunPython(encrypt_existing, decrypt_existing),
    ]
