"""Lead scoring: 0-100 and explainable.

Four categories as in the seed project's algorithm — property 40, demographics 30, enrichment 20,
behavioral 10 — each the sum of its factors' points (equity and value bands, property type; age bands
62+/65+/70+/75+, owner-occupied, state; contact completeness and verification, enrichment confidence;
engagement). The weights live here, in one dict; `LEAD_SCORE_WEIGHTS` (a JSON object in the
environment) overrides any of them.

The score is computed set-based: `score_columns_sql()` gives the categories' points as SQL that the
ingestion puts into its INSERT … SELECT and UPDATE … FROM (then `score_sql()` and
`breakdown_from_columns_sql()` over them), so no lead is scored with a per-row round trip. The stored
`score_breakdown` is `{"property": p, "demographics": d, "enrichment": e, "behavioral": b, "total": t,
"version": 1}`; `lead_score` is `total`.
"""

from __future__ import annotations

from django.conf import settings
from django.db import connection

# Points per factor. Each category's points add up to its share of 100.
WEIGHTS: dict[str, float] = {
    # property (40)
    "equity_500k": 20,
    "equity_300k": 16,
    "equity_150k": 12,
    "equity_50k": 6,
    "value_1m": 12,
    "value_600k": 9,
    "value_300k": 6,
    "value_any": 3,
    "type_single_family": 8,
    "type_condo_townhouse": 5,
    "type_multi_family": 4,
    "type_other": 2,
    # demographics (30)
    "age_75": 18,
    "age_70": 16,
    "age_65": 13,
    "age_62": 10,
    "owner_occupied": 8,
    "state_priority": 4,
    "state_other": 2,
    # enrichment (20)
    "has_email": 4,
    "has_phone": 4,
    "email_verified": 4,
    "phone_verified": 4,
    "enriched": 4,
    # behavioral (10)
    "replied": 10,
    "active": 5,
    "queued": 2,
}
CATEGORIES = ("property", "demographics", "enrichment", "behavioral")
PRIORITY_STATES = ("CA", "FL", "TX", "AZ", "NV", "CO", "OR", "WA", "NY", "NJ")
SCORE_VERSION = 1


def weights() -> dict[str, float]:
    return {**WEIGHTS, **(getattr(settings, "LEAD_SCORE_WEIGHTS", None) or {})}


def _n(value: float) -> str:
    return repr(float(value))  # numbers we own, formatted as SQL numeric literals


class _Literals:
    """The weights as numeric literals (the bulk path: the statement is built with the settings' weights)."""

    def __init__(self) -> None:
        self.points = weights()

    def __getitem__(self, name: str) -> str:
        return _n(self.points[name])


class _TableLookups:
    """The weights read at run time from the jsonb variable `w` (the SQL function: `lead_score_weights`)."""

    def __getitem__(self, name: str) -> str:
        return f"coalesce((w ->> '{name}')::numeric, 0)"


def category_sql(c: dict[str, str], *, weights_from_table: bool = False) -> dict[str, str]:
    """Each category's points as an SQL expression. `c` maps each input to an SQL expression:
    property_value, estimated_equity, property_type, age, owner_occupied, property_state, email, phone,
    email_verified, phone_verified, melissa_payload, campaign_status. With `weights_from_table`, the weights
    are read from a jsonb variable `w` (filled from `lead_score_weights`) instead of written in."""
    w = _TableLookups() if weights_from_table else _Literals()
    states = ", ".join(f"'{code}'" for code in PRIORITY_STATES if code.isalpha() and len(code) == 2)
    prop = (
        f"(CASE WHEN {c['estimated_equity']} >= 500000 THEN {w['equity_500k']}"
        f" WHEN {c['estimated_equity']} >= 300000 THEN {w['equity_300k']}"
        f" WHEN {c['estimated_equity']} >= 150000 THEN {w['equity_150k']}"
        f" WHEN {c['estimated_equity']} >= 50000 THEN {w['equity_50k']} ELSE 0 END"
        f" + CASE WHEN {c['property_value']} >= 1000000 THEN {w['value_1m']}"
        f" WHEN {c['property_value']} >= 600000 THEN {w['value_600k']}"
        f" WHEN {c['property_value']} >= 300000 THEN {w['value_300k']}"
        f" WHEN {c['property_value']} > 0 THEN {w['value_any']} ELSE 0 END"
        f" + CASE WHEN {c['property_type']} IS NULL THEN 0"
        f" WHEN {c['property_type']} ~* 'single|sfr' THEN {w['type_single_family']}"
        f" WHEN {c['property_type']} ~* 'condo|town' THEN {w['type_condo_townhouse']}"
        f" WHEN {c['property_type']} ~* 'multi|duplex|triplex|fourplex' THEN {w['type_multi_family']}"
        f" ELSE {w['type_other']} END)"
    )
    demo = (
        f"(CASE WHEN {c['age']} >= 75 THEN {w['age_75']} WHEN {c['age']} >= 70 THEN {w['age_70']}"
        f" WHEN {c['age']} >= 65 THEN {w['age_65']} WHEN {c['age']} >= 62 THEN {w['age_62']} ELSE 0 END"
        f" + CASE WHEN {c['owner_occupied']} THEN {w['owner_occupied']} ELSE 0 END"
        f" + CASE WHEN {c['property_state']} IN ({states}) THEN {w['state_priority']}"
        f" WHEN {c['property_state']} IS NOT NULL THEN {w['state_other']} ELSE 0 END)"
    )
    enrich = (
        f"(CASE WHEN {c['email']} IS NOT NULL AND {c['email']} <> '' THEN {w['has_email']} ELSE 0 END"
        f" + CASE WHEN {c['phone']} IS NOT NULL AND {c['phone']} <> '' THEN {w['has_phone']} ELSE 0 END"
        f" + CASE WHEN {c['email_verified']} THEN {w['email_verified']} ELSE 0 END"
        f" + CASE WHEN {c['phone_verified']} THEN {w['phone_verified']} ELSE 0 END"
        f" + CASE WHEN coalesce({c['melissa_payload']}, '{{}}'::jsonb) <> '{{}}'::jsonb"
        f" THEN {w['enriched']} ELSE 0 END)"
    )
    behave = (
        f"(CASE WHEN {c['campaign_status']}::text IN ('replied', 'converted') THEN {w['replied']}"
        f" WHEN {c['campaign_status']}::text = 'active' THEN {w['active']}"
        f" WHEN {c['campaign_status']}::text = 'queued' THEN {w['queued']} ELSE 0 END)"
    )
    return {"property": prop, "demographics": demo, "enrichment": enrich, "behavioral": behave}


# Scoring inside a statement is two steps, so each category is computed once per lead: a subquery
# (kept apart by OFFSET 0) adds `score_columns_sql(inputs)`; the outer query reads `score_sql(alias)` and
# `breakdown_from_columns_sql(alias)` from it.


def score_columns_sql(c: dict[str, str], *, weights_from_table: bool = False) -> str:
    """`<points> AS score_<category>, …` for a select list."""
    expressions = category_sql(c, weights_from_table=weights_from_table)
    return ", ".join(f"{expression} AS score_{name}" for name, expression in expressions.items())


def score_sql(alias: str) -> str:
    """The 0-100 integer score from the `score_<category>` columns of `alias` (clamped, rounded)."""
    total = " + ".join(f"{alias}.score_{name}" for name in CATEGORIES)
    return f"greatest(0, least(100, round({total})))::int"


def breakdown_from_columns_sql(alias: str) -> str:
    """The stored `score_breakdown` (jsonb) from the `score_<category>` columns of `alias`."""
    parts = ", ".join(f"'{name}', {alias}.score_{name}" for name in CATEGORIES)
    return f"jsonb_build_object({parts}, 'total', {score_sql(alias)}, 'version', {SCORE_VERSION})"


LEAD_COLUMNS = {
    name: name
    for name in (
        "property_value",
        "estimated_equity",
        "property_type",
        "age",
        "owner_occupied",
        "property_state",
        "email",
        "phone",
        "email_verified",
        "phone_verified",
        "melissa_payload",
        "campaign_status",
    )
}


def leads_rescore(*, lead_ids=None) -> int:
    """Recompute `lead_score` and `score_breakdown` for the given leads (all when None), set-based.

    Run inside a database context that may update them (jobs: `service_context()`)."""
    sql = (
        f"WITH s AS (SELECT id, {score_columns_sql(LEAD_COLUMNS)} FROM leads"
        f"{'' if lead_ids is None else ' WHERE id = ANY(%s::uuid[])'})"
        f" UPDATE leads l SET score_breakdown = {breakdown_from_columns_sql('s')}, lead_score = {score_sql('s')}"
        " FROM s WHERE l.id = s.id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [] if lead_ids is None else [[str(i) for i in lead_ids]])
        return cursor.rowcount


# The seed's `upsert_lead()` (the legacy path) scores with the same rule: `lead_rule_score_apply(id)` computes it
# in SQL from `lead_score_weights`, which `score_weights_sync()` keeps equal to `weights()` (after every
# `migrate`, and whenever called).
WEIGHTS_SYNC_SQL = """
INSERT INTO lead_score_weights (name, points)
SELECT key, value::numeric FROM jsonb_each_text(%s::jsonb)
ON CONFLICT (name) DO UPDATE SET points = excluded.points WHERE lead_score_weights.points <> excluded.points
"""


def score_weights_sync(*, using: str = "default") -> None:
    """Make `lead_score_weights` equal to the settings' weights (`LEAD_SCORE_WEIGHTS` over `WEIGHTS`)."""
    import json

    from django.db import connections

    current = weights()
    with connections[using].cursor() as cursor:
        cursor.execute(WEIGHTS_SYNC_SQL, [json.dumps(current)])
        cursor.execute("DELETE FROM lead_score_weights WHERE NOT (name = ANY(%s))", [list(current)])


def rule_score_function_sql() -> str:
    """`lead_rule_score_apply(id)`: the rule score and breakdown of one lead, computed as the bulk path does."""
    columns = score_columns_sql({name: f"l.{name}" for name in LEAD_COLUMNS}, weights_from_table=True)
    return f"""
CREATE OR REPLACE FUNCTION lead_rule_score_apply(p_id uuid) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  w jsonb;
BEGIN
  SELECT coalesce(jsonb_object_agg(name, points), '{{}}'::jsonb) INTO w FROM lead_score_weights;
  UPDATE leads t SET lead_score = {score_sql("s")}, score_breakdown = {breakdown_from_columns_sql("s")}
    FROM (SELECT l.id, {columns} FROM leads l WHERE l.id = p_id) s
   WHERE t.id = s.id;
END
$$;
"""
