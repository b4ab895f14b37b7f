"""The DNC registry keyed by a 16-byte `phone_key` (uuid) instead of the 35-character `phone_bidx` text, with one
index (the primary key on `phone_key`) instead of two, so that a 10M-number import builds its index in seconds
(issue 13; figures in docs/benchmarks.md). `number` stays, an integer without an index.

- `phone_key` is the hex part of the phone blind index (`<version>:<32 hex>`) as a uuid; the registry's version
  is kept once, on the newest import (`dnc_registry_imports.blind_index_version`), not on 10M rows.
- `dnc_phone_key(phone_bidx)` turns a lead's (or a staged row's) `phone_bidx` into the same key, for the joins.
- The load table carries `phone_key` too (deletion files are keyed as well: a change import deletes by key).
- The two owner functions now drop and build the one primary key, and switch the registry's row-level security
  off and on again around a full import's COPY (one transaction, under an ACCESS EXCLUSIVE lock).

On a registry of 10M numbers this migration took ~4 min on the 2-core machine (the keys converted in place, the
table locked); a fresh `dnc_import FILE --replace` after it takes under a minute and may be preferred.
"""

from django.db import migrations, models

# Why: the registry's key version is known from its rows (every import so far wrote `<version>:<hex>`); the most
# common one goes on the newest import, which is where the import now reads the registry's version.
VERSION_FORWARD = """
UPDATE dnc_registry_imports i SET blind_index_version = v.version
  FROM (SELECT split_part(phone_bidx, ':', 1) AS version FROM dnc_registry_numbers
         GROUP BY 1 ORDER BY count(*) DESC LIMIT 1) v
 WHERE i.id = (SELECT id FROM dnc_registry_imports ORDER BY imported_at DESC, id DESC LIMIT 1);
"""

# Why: a uuid compares as 16 bytes (memcmp), the text as a 35-character string; one index is enough because a
# deletion or change file is keyed too (dedupe and deletes by key), and nothing looks a registry row up by number.
REGISTRY_FORWARD = """
ALTER TABLE dnc_registry_numbers ADD COLUMN phone_key uuid;
UPDATE dnc_registry_numbers SET phone_key = substr(phone_bidx, strpos(phone_bidx, ':') + 1)::uuid;
DROP INDEX IF EXISTS dnc_registry_numbers_bidx_idx;
ALTER TABLE dnc_registry_numbers DROP CONSTRAINT IF EXISTS dnc_registry_numbers_pkey;
ALTER TABLE dnc_registry_numbers DROP COLUMN phone_bidx;
ALTER TABLE dnc_registry_numbers ALTER COLUMN phone_key SET NOT NULL;
ALTER TABLE dnc_registry_numbers ADD CONSTRAINT dnc_registry_numbers_pkey PRIMARY KEY (phone_key);
TRUNCATE dnc_registry_load;
ALTER TABLE dnc_registry_load DROP COLUMN phone_bidx;
ALTER TABLE dnc_registry_load ADD COLUMN phone_key uuid NOT NULL;
"""
# Back to text under the newest import's version (a registry holds one version: the import refuses to mix them);
# a number listed twice (only possible in a registry mixed before this migration) keeps one row.
REGISTRY_BACKWARD = """
ALTER TABLE dnc_registry_numbers ADD COLUMN phone_bidx varchar(40);
UPDATE dnc_registry_numbers SET phone_bidx = coalesce(
    (SELECT nullif(blind_index_version, '') FROM dnc_registry_imports ORDER BY imported_at DESC, id DESC LIMIT 1),
    '1') || ':' || replace(phone_key::text, '-', '');
ALTER TABLE dnc_registry_numbers DROP CONSTRAINT IF EXISTS dnc_registry_numbers_pkey;
DELETE FROM dnc_registry_numbers a USING dnc_registry_numbers b WHERE a.number = b.number AND a.ctid < b.ctid;
ALTER TABLE dnc_registry_numbers DROP COLUMN phone_key;
ALTER TABLE dnc_registry_numbers ALTER COLUMN phone_bidx SET NOT NULL;
ALTER TABLE dnc_registry_numbers ADD CONSTRAINT dnc_registry_numbers_pkey PRIMARY KEY (number);
CREATE INDEX dnc_registry_numbers_bidx_idx ON dnc_registry_numbers (phone_bidx);
TRUNCATE dnc_registry_load;
ALTER TABLE dnc_registry_load DROP COLUMN phone_key;
ALTER TABLE dnc_registry_load ADD COLUMN phone_bidx text;
"""

# Why: the joins of leads (and staged rows) with the registry need the key of a `phone_bidx`; a plain SQL
# function (not STRICT, so the planner inlines it) that yields NULL for anything but `<version>:<32 hex>`, so a
# malformed value matches nothing instead of failing the statement. Pure and secret-free: callable by anyone.
KEY_FUNCTION_FORWARD = """
CREATE FUNCTION dnc_phone_key(phone_bidx text) RETURNS uuid
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN phone_bidx ~ '^[A-Za-z0-9]+:[0-9a-f]{32}$'
              THEN substr(phone_bidx, strpos(phone_bidx, ':') + 1)::uuid END
$$;
"""
KEY_FUNCTION_BACKWARD = "DROP FUNCTION IF EXISTS dnc_phone_key(text);"

# Why: dropping and adding the primary key needs the table's owner (SECURITY DEFINER, service_role only, as in
# 0015); now one index. A full import COPYs straight into the emptied registry, and COPY FROM refuses a table with
# row-level security: the drop function also disables it and the create function enables it again, both inside
# the import's one transaction and under its ACCESS EXCLUSIVE lock, so no other session ever reads or writes the
# table while it is off, and a failed import rolls the switch back with everything else. The build raises
# unique_violation when a key is listed twice: the import then deduplicates and builds again.
INDEX_FUNCTIONS_FORWARD = """
CREATE OR REPLACE FUNCTION dnc_registry_indexes_drop() RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  LOCK TABLE dnc_registry_numbers IN ACCESS EXCLUSIVE MODE;
  ALTER TABLE dnc_registry_numbers DROP CONSTRAINT IF EXISTS dnc_registry_numbers_pkey;
  ALTER TABLE dnc_registry_numbers DISABLE ROW LEVEL SECURITY;
END
$$;
CREATE OR REPLACE FUNCTION dnc_registry_indexes_create() RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  ALTER TABLE dnc_registry_numbers ENABLE ROW LEVEL SECURITY;
  IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'dnc_registry_numbers_pkey'
                   AND conrelid = 'dnc_registry_numbers'::regclass) THEN
    ALTER TABLE dnc_registry_numbers ADD CONSTRAINT dnc_registry_numbers_pkey PRIMARY KEY (phone_key);
  END IF;
  ANALYZE dnc_registry_numbers;
END
$$;
"""
INDEX_FUNCTIONS_BACKWARD = """
CREATE OR REPLACE FUNCTION dnc_registry_indexes_drop() RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  LOCK TABLE dnc_registry_numbers IN ACCESS EXCLUSIVE MODE;
  DROP INDEX IF EXISTS dnc_registry_numbers_bidx_idx;
  ALTER TABLE dnc_registry_numbers DROP CONSTRAINT IF EXISTS dnc_registry_numbers_pkey;
END
$$;
CREATE OR REPLACE FUNCTION dnc_registry_indexes_create() RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'dnc_registry_numbers_pkey') THEN
    ALTER TABLE dnc_registry_numbers ADD CONSTRAINT dnc_registry_numbers_pkey PRIMARY KEY (number);
  END IF;
  CREATE INDEX IF NOT EXISTS dnc_registry_numbers_bidx_idx ON dnc_registry_numbers (phone_bidx);
  ANALYZE dnc_registry_numbers;
END
$$;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("leads", "0016_portal_views"),
    ]

    operations = [
        migrations.AddField(
            model_name="dncregistryimport",
            name="blind_index_version",
            field=models.TextField(
                blank=True,
                db_default="",
                default="",
                help_text="The blind-index version the registry's keys were computed under",
            ),
        ),
        migrations.RunSQL(VERSION_FORWARD, reverse_sql=migrations.RunSQL.noop),
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunSQL(REGISTRY_FORWARD, reverse_sql=REGISTRY_BACKWARD)],
            state_operations=[
                migrations.RemoveIndex(model_name="dncregistrynumber", name="dnc_registry_numbers_bidx_idx"),
                migrations.RemoveField(model_name="dncregistrynumber", name="phone_bidx"),
                migrations.AlterField(model_name="dncregistrynumber", name="number", field=models.BigIntegerField()),
                migrations.AddField(
                    model_name="dncregistrynumber",
                    name="phone_key",
                    field=models.UUIDField(default=None, primary_key=True, serialize=False),
                    preserve_default=False,
                ),
            ],
        ),
        migrations.RunSQL(KEY_FUNCTION_FORWARD, reverse_sql=KEY_FUNCTION_BACKWARD),
        migrations.RunSQL(INDEX_FUNCTIONS_FORWARD, reverse_sql=INDEX_FUNCTIONS_BACKWARD),
    ]
