"""`ec_uuid_time_ordered()`: a UUID whose first 48 bits are the Unix time in milliseconds (the layout of RFC 9562's
version 7; PostgreSQL 15 has no `uuidv7()`), the rest random (74 bits), for the ids of the leads an upload creates.

Why: with `gen_random_uuid()` every new lead's primary-key entry lands on a random leaf of `leads_pkey`; once the
index outgrows the buffer cache (about 5M leads here) each insert reads and dirties a different page, and the
upload's INSERT step grew with the table. Time-ordered ids put an upload's new entries on the few rightmost
leaves. Ids stay unguessable (74 random bits) and unique; they reveal when the lead was made, which `created_at`
already shows everyone who can see the lead. Measured in docs/benchmarks.md (`ingest_growth`).
"""

from django.db import migrations

FORWARD = """
CREATE FUNCTION ec_uuid_time_ordered() RETURNS uuid
LANGUAGE sql VOLATILE PARALLEL SAFE AS $$
  -- A random (version 4) UUID whose first 6 bytes become the time in ms; setting bits 52 and 53 turns the
  -- version nibble 0100 (4) into 0111 (7). The variant bits stay those of version 4 (RFC 9562's).
  SELECT encode(
           set_bit(set_bit(
             overlay(uuid_send(gen_random_uuid())
                     PLACING substring(int8send((extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
                     FROM 1 FOR 6),
             52, 1), 53, 1),
           'hex')::uuid
$$;
COMMENT ON FUNCTION ec_uuid_time_ordered() IS
  'A version-7 layout UUID (48-bit Unix ms, then random): ids of new leads, so leads_pkey grows at its right edge';
"""
REVERSE = "DROP FUNCTION ec_uuid_time_ordered();"


class Migration(migrations.Migration):
    dependencies = [("leads", "0026_lead_search")]

    operations = [migrations.RunSQL(FORWARD, REVERSE)]
