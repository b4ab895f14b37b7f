"""In-file dedupe: which rows of the file are one property (pipeline/ingest/apply.py runs these in order).

The rule, everywhere: MAK → APN → address hash is the order of trust, and two records are one property when
they share a key and no stronger key is present on both and different. So a chain of weaker links never
joins two records whose stronger keys conflict (A and B at one address, B and C at one address, A and C
with different APNs: never one property).

Only rows that share a key with another row of the file are looked at (`ingest_linked`); every other row
is a property of its own. Labels are line numbers (the earliest row of a property names it), in tiers:

1. MAK: rows with one MAK are one property, whatever their weaker keys say;
2. APN: rows without a MAK that share an APN are one property, joined to the MAK property that holds that
   APN when exactly one does (several: the match is ambiguous, so they stay apart);
3. address: rows with neither MAK nor APN at one address are one property; then properties linked through
   shared addresses form a component, merged when it holds at most one MAK and at most one APN, kept apart
   otherwise (two APNs at one address: two parcels).

Properties of the file that still share a key are recorded as pairs (`ingest_pairs`): possible duplicates.
"""

from __future__ import annotations

from leads.columns import INGESTED

# The upload's valid rows, narrow (no raw JSON) and ANALYZEd: the statistics of the shared staging table say
# little about one upload, and a misestimate here turns the joins below into nested loops. Only the columns
# that joins and groupings use are analysed: sampling the wide ones costs more than the rest.
ROWS = (
    f"CREATE TEMP TABLE ingest_rows ON COMMIT DROP AS\n"
    f"SELECT line_number AS line, {', '.join(INGESTED)}\n"
    "  FROM leads_staging\n"
    " WHERE upload_id = %(upload)s AND reject_reason IS NULL\n"
    "   AND (%(lines)s::int[] IS NULL OR line_number = ANY(%(lines)s::int[]))"
)
ANALYZE_ROWS = "ANALYZE ingest_rows (line, mak, apn, addr_hash)"

# Rows that share a key with another row of the file (hash aggregates find the keys used more than once).
LINKED = """CREATE TEMP TABLE ingest_linked ON COMMIT DROP AS
SELECT line, mak, apn, addr_hash, line AS label
  FROM ingest_rows k
 WHERE k.mak IN (SELECT mak FROM ingest_rows WHERE mak IS NOT NULL GROUP BY mak HAVING count(*) > 1)
    OR k.apn IN (SELECT apn FROM ingest_rows WHERE apn IS NOT NULL GROUP BY apn HAVING count(*) > 1)
    OR k.addr_hash IN (SELECT addr_hash FROM ingest_rows WHERE addr_hash IS NOT NULL
                        GROUP BY addr_hash HAVING count(*) > 1)"""

# 1. One MAK, one property.
TIER_MAK = """UPDATE ingest_linked k SET label = m.label
  FROM (SELECT mak, min(line) AS label FROM ingest_linked WHERE mak IS NOT NULL GROUP BY mak) m
 WHERE k.mak = m.mak AND k.label <> m.label"""

# 2. Rows without a MAK, by APN: one property, joined to the MAK property holding the APN if exactly one does.
TIER_APN = """UPDATE ingest_linked k SET label = CASE WHEN o.properties = 1 THEN o.label ELSE g.label END
  FROM (SELECT apn, min(line) AS label FROM ingest_linked WHERE mak IS NULL AND apn IS NOT NULL GROUP BY apn) g
  LEFT JOIN (SELECT apn, min(label) AS label, count(DISTINCT label) AS properties FROM ingest_linked
              WHERE mak IS NOT NULL AND apn IS NOT NULL GROUP BY apn) o ON o.apn = g.apn
 WHERE k.mak IS NULL AND k.apn = g.apn
   AND k.label <> CASE WHEN o.properties = 1 THEN o.label ELSE g.label END"""

# 3a. Rows with neither MAK nor APN, by address: one property.
TIER_ADDRESS_ONLY = """UPDATE ingest_linked k SET label = g.label
  FROM (SELECT addr_hash, min(line) AS label FROM ingest_linked
         WHERE mak IS NULL AND apn IS NULL AND addr_hash IS NOT NULL GROUP BY addr_hash) g
 WHERE k.mak IS NULL AND k.apn IS NULL AND k.addr_hash = g.addr_hash AND k.label <> g.label"""

# 3b. Addresses that two properties share, and each property's strong keys.
SHARED_ADDRESSES = """CREATE TEMP TABLE ingest_addresses ON COMMIT DROP AS
SELECT DISTINCT label, addr_hash FROM ingest_linked
 WHERE addr_hash IN (SELECT addr_hash FROM ingest_linked WHERE addr_hash IS NOT NULL
                      GROUP BY addr_hash HAVING count(DISTINCT label) > 1)"""
GROUPS = """CREATE TEMP TABLE ingest_groups ON COMMIT DROP AS
SELECT label, label AS component, bool_or(mak IS NOT NULL) AS has_mak, bool_or(apn IS NOT NULL) AS has_apn
  FROM ingest_linked WHERE label IN (SELECT label FROM ingest_addresses) GROUP BY label"""

# 3c. Components over shared addresses (min-label propagation; repeated until it changes nothing).
PROPAGATE_COMPONENTS = """UPDATE ingest_groups g SET component = x.component
  FROM (SELECT a.label, min(m.component) AS component
          FROM ingest_addresses a
          JOIN (SELECT a2.addr_hash, min(g2.component) AS component
                  FROM ingest_addresses a2 JOIN ingest_groups g2 ON g2.label = a2.label
                 GROUP BY a2.addr_hash) m ON m.addr_hash = a.addr_hash
         GROUP BY a.label) x
 WHERE g.label = x.label AND x.component < g.component"""

# 3d. A component with at most one MAK and at most one APN is one property; any other keeps its parts apart.
MERGE_COMPONENTS = """UPDATE ingest_linked k SET label = c.component
  FROM (SELECT g.label, g.component FROM ingest_groups g
          JOIN (SELECT component FROM ingest_groups GROUP BY component
                HAVING count(*) FILTER (WHERE has_mak) <= 1 AND count(*) FILTER (WHERE has_apn) <= 1) ok
            ON ok.component = g.component
         WHERE g.label <> g.component) c
 WHERE k.label = c.label"""

ANALYZE_LINKED = "ANALYZE ingest_linked"
COUNT_LINKED_PROPERTIES = "SELECT count(DISTINCT label) FROM ingest_linked"

# Properties of the file that share a key but stayed apart: one row per pair, by the strongest shared key.
PAIRS = """CREATE TEMP TABLE ingest_pairs ON COMMIT DROP AS
SELECT DISTINCT ON (label_a, label_b) label_a, label_b, key FROM (
  SELECT a.label AS label_a, b.label AS label_b, 'apn' AS key, 1 AS strength
    FROM (SELECT DISTINCT label, apn FROM ingest_linked WHERE apn IS NOT NULL) a
    JOIN (SELECT DISTINCT label, apn FROM ingest_linked WHERE apn IS NOT NULL) b
      ON a.apn = b.apn AND a.label < b.label
  UNION ALL
  SELECT a.label, b.label, 'addr_hash', 2
    FROM (SELECT DISTINCT label, addr_hash FROM ingest_linked WHERE addr_hash IS NOT NULL) a
    JOIN (SELECT DISTINCT label, addr_hash FROM ingest_linked WHERE addr_hash IS NOT NULL) b
      ON a.addr_hash = b.addr_hash AND a.label < b.label
) p ORDER BY label_a, label_b, strength"""
