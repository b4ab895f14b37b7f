"""The seed's `upsert_lead()` scores the leads it writes with the bulk path's rule score (it wrote 0 before).

The weights live in `lead_score_weights`, which the application keeps equal to its settings (`WEIGHTS` with
`LEAD_SCORE_WEIGHTS` over them: `leads.scoring.score_weights_sync()`, run after every `migrate`); the
function `lead_rule_score_apply(id)` reads them at run time and computes the score with the same CASE
expressions as the ingestion (generated from `leads/scoring.py`, and re-created after every `migrate` so the
two cannot drift). `upsert_lead()` calls it for the lead it inserted or merged into unless the caller passed
`p_lead_score`. A learned score, when one is active, re-scores later.
"""

from importlib import import_module

from django.db import migrations

from leads.scoring import rule_score_function_sql, score_weights_sync

# upsert_lead() as leads/migrations/0011 wrote it (0007's, with the mailing columns), replaced in place.
MAILING = import_module("leads.migrations.0011_contact_windows")
OLD_UPSERT = MAILING.UPSERT_LEAD.replace(
    f"DROP FUNCTION IF EXISTS {MAILING.PREVIOUS_SIGNATURE};\nCREATE FUNCTION upsert_lead(",
    "CREATE OR REPLACE FUNCTION upsert_lead(",
)
MERGED = "      END;\n      RETURN v_id;\n    END IF;"
INSERTED = "      RETURNING id INTO v_id;\n      RETURN v_id;"
assert (
    OLD_UPSERT.startswith("\nCREATE OR REPLACE") and OLD_UPSERT.count(MERGED) == 1 and OLD_UPSERT.count(INSERTED) == 1
), "0011's upsert_lead() changed shape"
SCORED = "IF p_lead_score IS NULL THEN PERFORM lead_rule_score_apply(v_id); END IF;"
NEW_UPSERT = OLD_UPSERT.replace(MERGED, f"      END;\n      {SCORED}\n      RETURN v_id;\n    END IF;").replace(
    INSERTED, f"      RETURNING id INTO v_id;\n      {SCORED}\n      RETURN v_id;"
)

WEIGHTS_TABLE = """
-- Reference data, like verification_code_map: readable by the roles that may call upsert_lead(), kept in sync
-- by the application (service role).
CREATE TABLE lead_score_weights (
  name text PRIMARY KEY,
  points numeric NOT NULL
);
ALTER TABLE lead_score_weights ENABLE ROW LEVEL SECURITY;
CREATE POLICY lead_score_weights_read ON lead_score_weights FOR SELECT TO pipeline_writer USING (true);
CREATE POLICY lead_score_weights_service_all ON lead_score_weights FOR ALL TO service_role
  USING (true) WITH CHECK (true);
GRANT SELECT ON lead_score_weights TO pipeline_writer;
GRANT SELECT, INSERT, UPDATE, DELETE ON lead_score_weights TO service_role;
"""

DROP = """
DROP FUNCTION IF EXISTS lead_rule_score_apply(uuid);
DROP TABLE IF EXISTS lead_score_weights;
"""


def sync_weights(apps, schema_editor):
    score_weights_sync(using=schema_editor.connection.alias)


class Migration(migrations.Migration):
    dependencies = [("leads", "0017_dnc_registry_speed")]

    operations = [
        migrations.RunSQL(WEIGHTS_TABLE + rule_score_function_sql(), DROP),
        migrations.RunPython(sync_weights, migrations.RunPython.noop),
        # Back: 0011's definition, which wrote the caller's score or 0.
        migrations.RunSQL(NEW_UPSERT, OLD_UPSERT),
    ]
