"""Possible duplicates, recorded: the one statement that writes `possible_duplicates` in bulk (the ingestion's
pairs), and the words that say why two leads may be one property.

A pair is stored once, as (smaller id, larger id): a pair already recorded — open, merged or kept apart —
is never proposed again (ON CONFLICT DO NOTHING).
"""

from __future__ import annotations


def _reason(key: str, this: str, other: str, other_id: str) -> str:
    """SQL for the reason text of a pair, from `this` property's keys and the `other` lead's:
    'same address as lead <id>, APN 123-45 ≠ 678-90'."""
    shared = {
        "apn": f"'same APN ' || {this}.apn || ' as lead ' || {other_id}",
        "addr_hash": f"'same address as lead ' || {other_id}",
    }[key]
    return (
        f"{shared} || CASE"
        f" WHEN {this}.mak IS NOT NULL AND {other}.mak IS NOT NULL AND {this}.mak <> {other}.mak"
        f" THEN ', MAK ' || {this}.mak || ' ≠ ' || {other}.mak"
        f" WHEN {this}.apn IS NOT NULL AND {other}.apn IS NOT NULL AND {this}.apn <> {other}.apn"
        f" THEN ', APN ' || {this}.apn || ' ≠ ' || {other}.apn"
        " ELSE ', and it could belong to more than one lead' END"
    )


# The ingestion's pairs: properties of the file that share a key but stayed apart (`ingest_pairs`), and leads
# a property shares a key with but did not merge into (`ingest_candidates`); each side is the lead the
# property became (`target`, or the new lead's `new_id`). Needs `%(upload)s`.
POSSIBLE_DUPLICATES_FROM_INGEST_SQL = (
    "INSERT INTO possible_duplicates (lead_a_id, lead_b_id, key, reason, upload_id, status, note, created_at)\n"
    "SELECT least(this_id, other_id), greatest(this_id, other_id), key, reason, %(upload)s, 'open', '', now()\n"
    "  FROM (\n"
    "    SELECT coalesce(a.target, a.new_id) AS this_id, coalesce(b.target, b.new_id) AS other_id, p.key,\n"
    "           CASE p.key WHEN 'apn' THEN "
    + _reason("apn", "a", "b", "coalesce(b.target, b.new_id)::text")
    + "\n                      ELSE "
    + _reason("addr_hash", "a", "b", "coalesce(b.target, b.new_id)::text")
    + " END AS reason\n"
    "      FROM ingest_pairs p\n"
    "      JOIN ingest_resolved a ON a.label = p.label_a JOIN ingest_resolved b ON b.label = p.label_b\n"
    "    UNION ALL\n"
    "    SELECT coalesce(r.target, r.new_id), c.lead_id, c.via,\n"
    "           CASE c.via WHEN 'apn' THEN "
    + _reason("apn", "r", "c", "c.lead_id::text")
    + "\n                      ELSE "
    + _reason("addr_hash", "r", "c", "c.lead_id::text")
    + " END\n"
    "      FROM ingest_candidates c JOIN ingest_resolved r ON r.label = c.label\n"
    "     WHERE c.lead_id IS DISTINCT FROM r.target\n"
    "  ) pairs\n"
    " WHERE this_id <> other_id\n"
    # In one order in every apply: two applies recording the same pairs queue, never deadlock.
    " ORDER BY 1, 2\n"
    "ON CONFLICT (lead_a_id, lead_b_id) DO NOTHING"
)

# After an apply that ran beside others (no lock keeps uploads apart): a lead another upload created while this
# one applied was invisible to this one's match, and this one's to theirs, so neither proposed the pair. Run
# after commit over the leads the upload created (the temporary table `ingest_created`): every other lead they
# share an APN or an address with, by the match's rule (a lead this upload met was proposed already; a pair
# already stored is not proposed again). Needs `%(upload)s`.
POSSIBLE_DUPLICATES_SWEEP_SQL = (
    "INSERT INTO possible_duplicates (lead_a_id, lead_b_id, key, reason, upload_id, status, note, created_at)\n"
    "SELECT DISTINCT ON (least(this_id, other_id), greatest(this_id, other_id))\n"
    "       least(this_id, other_id), greatest(this_id, other_id), key, reason, %(upload)s, 'open', '', now()\n"
    "  FROM (\n"
    "    SELECT n.id AS this_id, o.id AS other_id, 'apn' AS key, 1 AS strength, "
    + _reason("apn", "n", "o", "o.id::text")
    + " AS reason\n"
    "      FROM leads n JOIN leads o ON o.apn = n.apn AND o.id <> n.id AND o.merged_into_id IS NULL\n"
    "     WHERE n.id IN (SELECT id FROM ingest_created) AND n.merged_into_id IS NULL\n"
    "    UNION ALL\n"
    "    SELECT n.id, o.id, 'addr_hash', 2, " + _reason("addr_hash", "n", "o", "o.id::text") + "\n"
    "      FROM leads n JOIN leads o ON o.addr_hash = n.addr_hash AND o.id <> n.id AND o.merged_into_id IS NULL\n"
    "     WHERE n.id IN (SELECT id FROM ingest_created) AND n.merged_into_id IS NULL\n"
    "  ) pairs\n"
    " ORDER BY least(this_id, other_id), greatest(this_id, other_id), strength\n"
    "ON CONFLICT (lead_a_id, lead_b_id) DO NOTHING"
)
