"""Consent per channel, consent links bound to what they were issued for, and a consent record nobody rewrites.

- `leads.consent_email`, `consent_sms`, `consent_phone`. The seed's `consent` stays, true exactly when one
  channel is; one trigger keeps the two consistent for every writer (the portal, the ingestion's owner
  change, a merge, the seed's SQL): a writer that changes channels gets `consent` from them, one that changes
  only `consent` gets channels from it (withdrawn: none; given: e-mail, which is what a consent meant before
  channels). Existing consents count as e-mail only. Both triggers carry a WHEN clause, checked in C, so the
  ingestion's merges, which never touch consent, pay nothing.
- `consent_tokens.fingerprint`: the lead's broker, e-mail and phone when the link was issued (an HMAC,
  security/consent_tokens.py). A link whose lead has since changed any of them is invalid. Links issued
  before this migration have none and are invalid: until now a broker could see and copy them.
- `lead_consent_audit`: the text, its version and the channels agreed to. The lead is referenced without a
  database constraint (a record outlives its lead), and a trigger refuses UPDATE and DELETE to every role
  but the table's owner. A lead merged into another keeps its records: the broker of the survivor sees them
  through `lead_merge_survivor()` in the read policy, and the history lists them through
  `lead_merge_family()`; both are SECURITY DEFINER (a tombstone may be another broker's) and return ids only.
"""

import django.contrib.postgres.fields
import django.db.models.deletion
from django.db import migrations, models

EXISTING_CONSENTS_ARE_EMAIL = """
UPDATE leads SET consent_email = true
 WHERE consent AND NOT (consent_email OR consent_sms OR consent_phone);
"""

CONSENT_CHANNELS = """
CREATE OR REPLACE FUNCTION leads_consent_channels() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND NEW.consent IS DISTINCT FROM OLD.consent THEN
    IF NOT NEW.consent THEN
      NEW.consent_email := false;
      NEW.consent_sms := false;
      NEW.consent_phone := false;
    ELSIF NOT (NEW.consent_email OR NEW.consent_sms OR NEW.consent_phone) THEN
      NEW.consent_email := true;
    END IF;
  ELSIF TG_OP = 'INSERT' AND NEW.consent AND NOT (NEW.consent_email OR NEW.consent_sms OR NEW.consent_phone) THEN
    NEW.consent_email := true;
  ELSE
    NEW.consent := NEW.consent_email OR NEW.consent_sms OR NEW.consent_phone;
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER trg_leads_consent_channels_insert
  BEFORE INSERT ON leads
  FOR EACH ROW
  WHEN (NEW.consent IS DISTINCT FROM (NEW.consent_email OR NEW.consent_sms OR NEW.consent_phone))
  EXECUTE FUNCTION leads_consent_channels();
CREATE TRIGGER trg_leads_consent_channels_update
  BEFORE UPDATE ON leads
  FOR EACH ROW
  WHEN (NEW.consent IS DISTINCT FROM OLD.consent OR NEW.consent_email IS DISTINCT FROM OLD.consent_email
        OR NEW.consent_sms IS DISTINCT FROM OLD.consent_sms OR NEW.consent_phone IS DISTINCT FROM OLD.consent_phone)
  EXECUTE FUNCTION leads_consent_channels();
"""

DROP_CONSENT_CHANNELS = """
DROP TRIGGER IF EXISTS trg_leads_consent_channels_update ON leads;
DROP TRIGGER IF EXISTS trg_leads_consent_channels_insert ON leads;
DROP FUNCTION IF EXISTS leads_consent_channels();
"""

AUDIT_APPEND_ONLY = """
-- Not SECURITY DEFINER: current_user is the role the statement runs as (after SET ROLE).
CREATE OR REPLACE FUNCTION lead_consent_audit_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF current_user::text = (SELECT pg_get_userbyid(relowner)::text FROM pg_class WHERE oid = TG_RELID) THEN
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
  END IF;
  RAISE EXCEPTION 'consent records are append-only: % on lead_consent_audit is refused', TG_OP
    USING ERRCODE = 'insufficient_privilege', HINT = 'Only the table owner may change or delete a consent record.';
END
$$;
CREATE TRIGGER trg_lead_consent_audit_append_only
  BEFORE UPDATE OR DELETE ON lead_consent_audit
  FOR EACH ROW EXECUTE FUNCTION lead_consent_audit_append_only();
"""

DROP_AUDIT_APPEND_ONLY = """
DROP TRIGGER IF EXISTS trg_lead_consent_audit_append_only ON lead_consent_audit;
DROP FUNCTION IF EXISTS lead_consent_audit_append_only();
"""

MERGED_HISTORY = """
-- The live lead a lead's records belong to: follows merged_into to its end (at most 10 merges).
CREATE OR REPLACE FUNCTION lead_merge_survivor(p_lead uuid) RETURNS uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  WITH RECURSIVE chain(id, next, depth) AS (
    SELECT id, merged_into_id, 0 FROM leads WHERE id = p_lead
    UNION ALL
    SELECT l.id, l.merged_into_id, c.depth + 1 FROM chain c JOIN leads l ON l.id = c.next WHERE c.depth < 10
  )
  SELECT id FROM chain ORDER BY depth DESC LIMIT 1
$$;
REVOKE ALL ON FUNCTION lead_merge_survivor(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lead_merge_survivor(uuid) TO authenticated, service_role;

-- A lead and the leads merged into it (through merges of merges), when the caller may see the lead.
CREATE OR REPLACE FUNCTION lead_merge_family(p_lead uuid) RETURNS SETOF uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  WITH RECURSIVE family(id, depth) AS (
    SELECT id, 0 FROM leads
     WHERE id = p_lead AND (auth.role() = 'service_role' OR assigned_broker_id = auth.uid())
    UNION ALL
    SELECT l.id, f.depth + 1 FROM family f JOIN leads l ON l.merged_into_id = f.id WHERE f.depth < 10
  )
  SELECT DISTINCT id FROM family
$$;
REVOKE ALL ON FUNCTION lead_merge_family(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lead_merge_family(uuid) TO authenticated, service_role;

DROP POLICY IF EXISTS lead_consent_audit_broker_select ON lead_consent_audit;
CREATE POLICY lead_consent_audit_broker_select ON lead_consent_audit FOR SELECT TO authenticated
  USING (EXISTS (SELECT 1 FROM leads l WHERE l.id = lead_id)
         OR EXISTS (SELECT 1 FROM leads l WHERE l.id = lead_merge_survivor(lead_id)));
"""

DROP_MERGED_HISTORY = """
DROP POLICY IF EXISTS lead_consent_audit_broker_select ON lead_consent_audit;
CREATE POLICY lead_consent_audit_broker_select ON lead_consent_audit FOR SELECT TO authenticated
  USING (EXISTS (SELECT 1 FROM leads l WHERE l.id = lead_id));
DROP FUNCTION IF EXISTS lead_merge_family(uuid);
DROP FUNCTION IF EXISTS lead_merge_survivor(uuid);
"""


class Migration(migrations.Migration):
    dependencies = [
        ("leads", "0007_dedupe_conflicts"),
        ("security", "0002_broker"),
    ]

    operations = [
        migrations.AddField(
            model_name="consenttoken",
            name="fingerprint",
            field=models.CharField(blank=True, db_default="", default="", max_length=64),
        ),
        migrations.AddField(
            model_name="lead",
            name="consent_email",
            field=models.BooleanField(db_default=False, default=False, verbose_name="consent to e-mails"),
        ),
        migrations.AddField(
            model_name="lead",
            name="consent_phone",
            field=models.BooleanField(db_default=False, default=False, verbose_name="consent to phone calls"),
        ),
        migrations.AddField(
            model_name="lead",
            name="consent_sms",
            field=models.BooleanField(db_default=False, default=False, verbose_name="consent to text messages"),
        ),
        migrations.AddField(
            model_name="leadconsentaudit",
            name="channels",
            field=django.contrib.postgres.fields.ArrayField(
                base_field=models.TextField(),
                blank=True,
                db_default=models.Value([]),
                default=list,
                help_text="email, sms, phone",
                size=None,
            ),
        ),
        migrations.AddField(
            model_name="leadconsentaudit",
            name="consent_text",
            field=models.TextField(blank=True, db_default="", default="", help_text="The exact text shown"),
        ),
        migrations.AddField(
            model_name="leadconsentaudit",
            name="consent_text_version",
            field=models.CharField(blank=True, db_default="", default="", max_length=32),
        ),
        migrations.AlterField(
            model_name="leadconsentaudit",
            name="lead",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="consent_audit",
                to="leads.lead",
            ),
        ),
        migrations.AddIndex(
            model_name="lead",
            index=models.Index(
                condition=models.Q(("merged_into__isnull", False)),
                fields=["merged_into"],
                name="leads_merged_into_idx",
            ),
        ),
        # The columns go with a reverse migration; their values need no undoing.
        migrations.RunSQL(EXISTING_CONSENTS_ARE_EMAIL, reverse_sql=migrations.RunSQL.noop),
        migrations.RunSQL(CONSENT_CHANNELS, reverse_sql=DROP_CONSENT_CHANNELS),
        migrations.RunSQL(AUDIT_APPEND_ONLY, reverse_sql=DROP_AUDIT_APPEND_ONLY),
        migrations.RunSQL(MERGED_HISTORY, reverse_sql=DROP_MERGED_HISTORY),
    ]
