"""The SQL that keeps each lead's `suppressed_channels` true to the suppression list and the DNC registry, in
sets: one statement recomputes the marks of a set of leads from every active entry that binds them.

A lead is bound by an active entry whose `value_indexes` hold its e-mail's, its e-mail domain's or its phone's
blind index (any version: `@>` on the GIN index), or its address hash — except an address entry made before
the lead's new owner arrived (`owner_changed_at`, set by the ingestion's owner change): it was about the
previous owner. The DNC registry binds phone and SMS by the phone's blind index: its key (`dnc_phone_key()`, the
index's 16 bytes as a uuid) against the registry's primary key.
Nothing here reads a plain-text e-mail or phone: leads' may be encrypted.
"""

from __future__ import annotations

# Every active entry (and registry number) that binds a lead of `target` (id, email_bidx, email_domain_bidx,
# phone_bidx, addr_hash, owner_changed_at): (id, reason, channels).
HITS = """
SELECT t.id, s.reason, s.channels FROM target t
  JOIN suppressions s ON s.kind = 'email' AND s.removed_at IS NULL AND s.value_indexes @> ARRAY[t.email_bidx]
UNION ALL
SELECT t.id, s.reason, s.channels FROM target t
  JOIN suppressions s ON s.kind = 'email_domain' AND s.removed_at IS NULL
   AND s.value_indexes @> ARRAY[t.email_domain_bidx]
UNION ALL
SELECT t.id, s.reason, s.channels FROM target t
  JOIN suppressions s ON s.kind = 'phone' AND s.removed_at IS NULL AND s.value_indexes @> ARRAY[t.phone_bidx]
UNION ALL
SELECT t.id, s.reason, s.channels FROM target t
  JOIN suppressions s ON s.kind = 'address' AND s.removed_at IS NULL
   AND s.value_indexes @> ARRAY[t.addr_hash]::varchar[]
 WHERE t.owner_changed_at IS NULL OR s.created_at > t.owner_changed_at
UNION ALL
SELECT t.id, 'dnc_registry', ARRAY['phone', 'sms']::varchar[] FROM target t
  JOIN dnc_registry_numbers d ON d.phone_key = dnc_phone_key(t.phone_bidx)"""


def marks_refresh_sql(targets: str) -> str:
    """Recompute `suppressed_channels` of the leads whose ids `targets` (a SELECT of one uuid column) gives,
    writing only the leads whose marks change; returns (id, assigned_broker_id, suppressed_channels) of those::

        WITH target AS (SELECT id, email_bidx, … FROM leads WHERE id IN (<targets>)),
             hits AS (<HITS>),
             marks AS (SELECT id, jsonb_object_agg(channel, reasons) … FROM hits, unnest(channels) … GROUP BY id)
        UPDATE leads l SET suppressed_channels = coalesce(m.marks, '{}'), updated_at = now()
          FROM target t LEFT JOIN marks m ON m.id = t.id
         WHERE l.id = t.id AND l.suppressed_channels IS DISTINCT FROM coalesce(m.marks, '{}')
        RETURNING l.id, l.assigned_broker_id, l.suppressed_channels
    """
    return f"""WITH target AS (
  SELECT l.id, l.email_bidx, l.email_domain_bidx, l.phone_bidx, l.addr_hash, l.owner_changed_at
    FROM leads l WHERE l.id IN ({targets})
),
hits AS ({HITS}
),
per_channel AS (
  SELECT h.id, c.channel, to_jsonb(array_agg(DISTINCT h.reason ORDER BY h.reason)) AS reasons
    FROM hits h CROSS JOIN LATERAL unnest(h.channels) AS c(channel)
   GROUP BY h.id, c.channel
),
marks AS (SELECT id, jsonb_object_agg(channel, reasons) AS marks FROM per_channel GROUP BY id)
UPDATE leads l SET suppressed_channels = coalesce(m.marks, '{{}}'::jsonb), updated_at = now()
  FROM target t LEFT JOIN marks m ON m.id = t.id
 WHERE l.id = t.id AND l.suppressed_channels IS DISTINCT FROM coalesce(m.marks, '{{}}'::jsonb)
RETURNING l.id, l.assigned_broker_id, l.suppressed_channels"""


# The lead column each kind's values are matched on.
KIND_COLUMNS = {
    "email": "email_bidx",
    "email_domain": "email_domain_bidx",
    "phone": "phone_bidx",
    "address": "addr_hash",
}


def kind_targets(kind: str, param: str = "indexes") -> str:
    """The leads the values of one kind can bind, on the leads' indexed column (`%(<param>)s`: varchar[])."""
    return f"SELECT id FROM leads WHERE {KIND_COLUMNS[kind]} = ANY(%({param})s::varchar[])"


# The leads an entry's values can bind: by kind, on the leads' indexed columns (`%(indexes)s`: varchar[]).
# No index on the domain: a domain entry is rare, and its SELECT reads `leads` once (so an import asks only for
# the kinds it holds: suppression_import_rows).
ENTRY_TARGETS = {kind: kind_targets(kind) for kind in KIND_COLUMNS}
# Leads by id (`%(ids)s`: uuid[]).
IDS_TARGETS = "SELECT unnest(%(ids)s::uuid[])"

# The leads (of `%(ids)s`) that an active entry binds for `%(channel)s` right now: the feeder's check at send time.
BOUND_FOR_CHANNEL = f"""WITH target AS (
  SELECT l.id, l.email_bidx, l.email_domain_bidx, l.phone_bidx, l.addr_hash, l.owner_changed_at
    FROM leads l WHERE l.id = ANY(%(ids)s::uuid[])
),
hits AS ({HITS}
)
SELECT DISTINCT id FROM hits WHERE %(channel)s = ANY(channels)"""
