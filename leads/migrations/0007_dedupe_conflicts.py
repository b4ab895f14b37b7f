"""Dedupe that never folds two properties into one lead (docs/architecture.md, "Dedupe").

MAK → APN → address hash stays the order of trust, and two records are one property only when they share
a key and no stronger key is present on both and different. So two leads may now share an APN (when their
MAKs differ) or an address (when their APNs or MAKs differ): the unique indexes on `apn` and `addr_hash`
become unique indexes on (apn, mak) and (addr_hash, apn, mak) with NULLS NOT DISTINCT. Each still leads
with its key, so a lookup by APN or by address uses it, and each still refuses a second lead with the same
key where no stronger key tells them apart (two address-only leads at one address, say).

Measured on this machine, 400,000 rows (half without a MAK), the three key indexes only: inserting in key
order took 4.4 s with the old unique indexes, 4.9 s with these (one wider index per key) and 5.3 s with
the alternative of a plain index plus a partial unique index per key (two indexes per key); single-key
lookups were the same within noise (35 to 46 µs per round trip).

Also: `merged_into` (a lead merged into another is kept as a tombstone pointing at the survivor),
`owner2_name` (a co-owner, for the same-household test), `ec_owner_changed()` (is the file's owner a new
owner of the lead?), and `upsert_lead()` rewritten to the same rule: it can no longer loop forever when a
MAK belongs to one lead and an APN to another, and it takes the co-owner.
"""

from importlib import import_module

import django.db.models.deletion
from django.db import migrations, models

OWNER_FUNCTIONS = r"""
-- An owner's name as a comparable key: upper case, letters only (any script), the words of trusts, estates and companies
-- dropped (TRUST, LIVING TRUST, ESTATE OF, ETAL, LLC, …), single letters dropped, words sorted, so
-- 'Smith, John A. Living Trust' and 'JOHN SMITH' are one owner. NULL when nothing is left.
CREATE OR REPLACE FUNCTION ec_owner_key(p_name text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT nullif(array_to_string(ARRAY(
    SELECT w FROM regexp_split_to_table(upper(coalesce(p_name, '')), '[^[:alpha:]]+') w
     WHERE length(w) > 1 AND w NOT IN ('THE', 'OF', 'AND', 'LIVING', 'FAMILY', 'REVOCABLE', 'IRREVOCABLE',
       'TRUST', 'TRUSTS', 'TRUSTEE', 'TRUSTEES', 'TR', 'TTEE', 'TTEES', 'ESTATE', 'EST', 'ETAL', 'ET', 'AL',
       'LLC', 'INC', 'LP', 'LLP', 'LTD', 'CORP', 'CO', 'JR', 'SR', 'II', 'III', 'IV', 'DECEASED', 'DEC')
     ORDER BY w), ' '), '')
$$;

-- Whether the owner a file lists is a new owner of the lead: both full names known (first and last) and
-- neither of the file's owners (Owner 1, Owner 2) is either of the lead's. A missing name is never a change.
CREATE OR REPLACE FUNCTION ec_owner_changed(
  lead_first text, lead_last text, lead_owner2 text, row_first text, row_last text, row_owner2 text
) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE
    WHEN upper(lead_first) = upper(row_first) AND upper(lead_last) = upper(row_last) THEN false
    WHEN nullif(btrim(lead_first), '') IS NULL OR nullif(btrim(lead_last), '') IS NULL
      OR nullif(btrim(row_first), '') IS NULL OR nullif(btrim(row_last), '') IS NULL THEN false
    ELSE ec_owner_key(row_first || ' ' || row_last) IS DISTINCT FROM ec_owner_key(lead_first || ' ' || lead_last)
     AND ec_owner_key(row_first || ' ' || row_last) IS DISTINCT FROM ec_owner_key(lead_owner2)
     AND ec_owner_key(lead_first || ' ' || lead_last) IS DISTINCT FROM ec_owner_key(row_owner2)
  END
$$;
GRANT EXECUTE ON FUNCTION ec_owner_key(text), ec_owner_changed(text, text, text, text, text, text)
  TO service_role, pipeline_writer;
"""

DROP_OWNER_FUNCTIONS = """
DROP FUNCTION IF EXISTS ec_owner_changed(text, text, text, text, text, text);
DROP FUNCTION IF EXISTS ec_owner_key(text);
"""

OLD_UPSERT_SIGNATURE = (
    "upsert_lead(text, text, text, text, text, text, text, text, text, text, text, numeric, numeric, text, integer,"
    " boolean, boolean, boolean, text[], text[], jsonb, uuid, integer, text)"
)
NEW_UPSERT_SIGNATURE = OLD_UPSERT_SIGNATURE.replace("integer, text)", "integer, text, text)")

UPSERT_LEAD = f"""
DROP FUNCTION IF EXISTS {OLD_UPSERT_SIGNATURE};
CREATE FUNCTION upsert_lead(
  p_mak text DEFAULT NULL,
  p_apn text DEFAULT NULL,
  p_addr_hash text DEFAULT NULL,
  p_first_name text DEFAULT NULL,
  p_last_name text DEFAULT NULL,
  p_email text DEFAULT NULL,
  p_phone text DEFAULT NULL,
  p_property_address text DEFAULT NULL,
  p_property_city text DEFAULT NULL,
  p_property_state text DEFAULT NULL,
  p_property_zip text DEFAULT NULL,
  p_property_value numeric DEFAULT NULL,
  p_estimated_equity numeric DEFAULT NULL,
  p_property_type text DEFAULT NULL,
  p_age integer DEFAULT NULL,
  p_owner_occupied boolean DEFAULT NULL,
  p_email_verified boolean DEFAULT false,
  p_phone_verified boolean DEFAULT false,
  p_email_verification_codes text[] DEFAULT '{{}}',
  p_phone_verification_codes text[] DEFAULT '{{}}',
  p_melissa_payload jsonb DEFAULT '{{}}',
  p_assigned_broker_id uuid DEFAULT NULL,
  p_lead_score integer DEFAULT NULL,
  p_source text DEFAULT NULL,
  p_owner2_name text DEFAULT NULL
) RETURNS uuid
LANGUAGE plpgsql AS $$
DECLARE
  v_id uuid;
  v_count integer;
BEGIN
  IF p_mak IS NULL AND p_apn IS NULL AND p_addr_hash IS NULL THEN
    RAISE EXCEPTION 'upsert_lead needs a dedupe key: mak, apn or addr_hash' USING ERRCODE = '22023';
  END IF;
  -- The ingestion's rule: one property when a key is shared and no stronger key is present on both and
  -- different; of several such leads, the one whose stronger keys are exactly these, else none (a new lead,
  -- which the ingestion would put up as a possible duplicate). Bounded: a concurrent insert of the same key
  -- is looked up again at most twice, then a clear error.
  FOR attempt IN 1..3 LOOP
    v_id := NULL;
    IF p_mak IS NOT NULL THEN
      SELECT id INTO v_id FROM leads WHERE mak = p_mak FOR UPDATE;
    END IF;
    IF v_id IS NULL AND p_apn IS NOT NULL THEN
      SELECT count(*) INTO v_count FROM leads
       WHERE apn = p_apn AND merged_into_id IS NULL AND (mak IS NULL OR p_mak IS NULL);
      SELECT id INTO v_id FROM leads
       WHERE apn = p_apn AND merged_into_id IS NULL AND (mak IS NULL OR p_mak IS NULL)
         AND (v_count = 1 OR mak IS NOT DISTINCT FROM p_mak)
       FOR UPDATE;
    END IF;
    IF v_id IS NULL AND p_addr_hash IS NOT NULL THEN
      SELECT count(*) INTO v_count FROM leads
       WHERE addr_hash = p_addr_hash AND merged_into_id IS NULL
         AND (mak IS NULL OR p_mak IS NULL) AND (apn IS NULL OR p_apn IS NULL);
      SELECT id INTO v_id FROM leads
       WHERE addr_hash = p_addr_hash AND merged_into_id IS NULL
         AND (mak IS NULL OR p_mak IS NULL) AND (apn IS NULL OR p_apn IS NULL)
         AND (v_count = 1 OR (mak IS NOT DISTINCT FROM p_mak AND apn IS NOT DISTINCT FROM p_apn))
       FOR UPDATE;
    END IF;

    IF v_id IS NOT NULL THEN
      -- The seed's safe merge: verified flags OR-ed, code arrays unioned, payload merged, existing
      -- contact data kept; campaign status (e.g. do_not_contact) untouched.
      UPDATE leads SET
        first_name = coalesce(nullif(first_name, ''), p_first_name),
        last_name = coalesce(nullif(last_name, ''), p_last_name),
        email = coalesce(nullif(email, ''), p_email),
        phone = coalesce(nullif(phone, ''), p_phone),
        property_address = coalesce(nullif(property_address, ''), p_property_address),
        property_city = coalesce(nullif(property_city, ''), p_property_city),
        property_state = coalesce(nullif(property_state, ''), p_property_state),
        property_zip = coalesce(nullif(property_zip, ''), p_property_zip),
        owner2_name = coalesce(nullif(owner2_name, ''), p_owner2_name),
        property_value = coalesce(p_property_value, property_value),
        estimated_equity = coalesce(p_estimated_equity, estimated_equity),
        property_type = coalesce(property_type, p_property_type),
        age = coalesce(age, p_age),
        owner_occupied = coalesce(owner_occupied, p_owner_occupied),
        email_verified = email_verified OR coalesce(p_email_verified, false),
        phone_verified = phone_verified OR coalesce(p_phone_verified, false),
        email_verification_codes = ARRAY(
          SELECT DISTINCT c FROM unnest(email_verification_codes || coalesce(p_email_verification_codes, '{{}}')) c
           WHERE c IS NOT NULL ORDER BY c),
        phone_verification_codes = ARRAY(
          SELECT DISTINCT c FROM unnest(phone_verification_codes || coalesce(p_phone_verification_codes, '{{}}')) c
           WHERE c IS NOT NULL ORDER BY c),
        melissa_payload = coalesce(melissa_payload, '{{}}'::jsonb) || coalesce(p_melissa_payload, '{{}}'::jsonb),
        assigned_broker_id = coalesce(assigned_broker_id, p_assigned_broker_id),
        lead_score = coalesce(p_lead_score, lead_score),
        updated_at = now()
      WHERE id = v_id;
      -- Missing keys filled in, one at a time: a key another lead already holds is not copied.
      BEGIN
        UPDATE leads SET mak = p_mak WHERE id = v_id AND mak IS NULL AND p_mak IS NOT NULL;
      EXCEPTION WHEN unique_violation THEN NULL;
      END;
      BEGIN
        UPDATE leads SET apn = p_apn WHERE id = v_id AND apn IS NULL AND p_apn IS NOT NULL;
      EXCEPTION WHEN unique_violation THEN NULL;
      END;
      BEGIN
        UPDATE leads SET addr_hash = p_addr_hash WHERE id = v_id AND addr_hash IS NULL AND p_addr_hash IS NOT NULL;
      EXCEPTION WHEN unique_violation THEN NULL;
      END;
      RETURN v_id;
    END IF;
    BEGIN
      INSERT INTO leads (
        mak, apn, addr_hash, first_name, last_name, email, phone,
        property_address, property_city, property_state, property_zip, property_value, estimated_equity,
        property_type, age, owner_occupied, email_verified, phone_verified,
        email_verification_codes, phone_verification_codes, melissa_payload, assigned_broker_id,
        lead_score, source, owner2_name
      ) VALUES (
        p_mak, p_apn, p_addr_hash, p_first_name, p_last_name, p_email, p_phone,
        p_property_address, p_property_city, p_property_state, p_property_zip, p_property_value,
        p_estimated_equity, p_property_type, p_age, p_owner_occupied,
        coalesce(p_email_verified, false), coalesce(p_phone_verified, false),
        ARRAY(SELECT DISTINCT c FROM unnest(coalesce(p_email_verification_codes, '{{}}')) c
               WHERE c IS NOT NULL ORDER BY c),
        ARRAY(SELECT DISTINCT c FROM unnest(coalesce(p_phone_verification_codes, '{{}}')) c
               WHERE c IS NOT NULL ORDER BY c),
        coalesce(p_melissa_payload, '{{}}'::jsonb), p_assigned_broker_id, coalesce(p_lead_score, 0), p_source,
        p_owner2_name
      )
      RETURNING id INTO v_id;
      RETURN v_id;
    EXCEPTION WHEN unique_violation THEN
      NULL;  -- another transaction inserted this key first: look again (at most twice more)
    END;
  END LOOP;
  RAISE EXCEPTION 'upsert_lead: the keys (mak %, apn %, addr_hash %) keep colliding with concurrent writers; try again',
    p_mak, p_apn, p_addr_hash USING ERRCODE = '40001';
END
$$;
REVOKE ALL ON FUNCTION {NEW_UPSERT_SIGNATURE} FROM PUBLIC;
GRANT EXECUTE ON FUNCTION {NEW_UPSERT_SIGNATURE} TO service_role, pipeline_writer;
"""

# Back: the previous definition, as its own migration wrote it.
OLD_FUNCTIONS = import_module("leads.migrations.0002_database_objects").FUNCTIONS
DROP_NEW_UPSERT = f"DROP FUNCTION IF EXISTS {NEW_UPSERT_SIGNATURE};\n" + OLD_FUNCTIONS


class Migration(migrations.Migration):
    dependencies = [
        ("leads", "0006_broker_moved_to_security"),
        ("security", "0002_broker"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="lead",
            name="leads_apn_uniq",
        ),
        migrations.RemoveConstraint(
            model_name="lead",
            name="leads_addr_hash_uniq",
        ),
        migrations.AddField(
            model_name="lead",
            name="merged_into",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="merged_leads",
                to="leads.lead",
            ),
        ),
        migrations.AddField(
            model_name="lead",
            name="owner2_name",
            field=models.TextField(
                blank=True, help_text="Owner 2, as the partner listed them", null=True, verbose_name="co-owner"
            ),
        ),
        migrations.AddConstraint(
            model_name="lead",
            constraint=models.UniqueConstraint(
                condition=models.Q(("apn__isnull", False)),
                fields=("apn", "mak"),
                name="leads_apn_mak_uniq",
                nulls_distinct=False,
            ),
        ),
        migrations.AddConstraint(
            model_name="lead",
            constraint=models.UniqueConstraint(
                condition=models.Q(("addr_hash__isnull", False)),
                fields=("addr_hash", "apn", "mak"),
                name="leads_addr_apn_mak_uniq",
                nulls_distinct=False,
            ),
        ),
        migrations.RunSQL(OWNER_FUNCTIONS, reverse_sql=DROP_OWNER_FUNCTIONS),
        migrations.RunSQL(UPSERT_LEAD, reverse_sql=DROP_NEW_UPSERT),
    ]
