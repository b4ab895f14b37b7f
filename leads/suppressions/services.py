"""Write paths of the suppression list: add an entry, remove one, import many; each marks the leads it binds
(or no longer binds) in the same transaction, in one statement (leads/suppressions/sql.py).

Callers: the Instantly webhook (bounce, unsubscribe), the consent e-mail's unsubscribe link, the portal's and
the admin's do-not-contact (customer request), the `suppression` and `dnc_import` commands, the admin, and the
privacy erase (an `erasure` entry from blind indexes only). The Instantly side of a new entry (its block-list
entry, the sequences it stops) is done once per entry by the pipeline's sync job, which reads the entries not
yet synced (pipeline/campaigns/blocklist.py): this module never calls out.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass

from django.db import connection, transaction
from django.utils import timezone

from equity_connect.db import service_context
from equity_connect.events import lead_events_insert_sql, record_event
from security.pii import EMAIL, EMAIL_DOMAIN, PHONE, codec

from ..masking import MASK, mask_email, mask_phone
from .models import Suppression
from .rules import SuppressionInvalid, SuppressionKind, SuppressionReason, channels_for
from .sql import ENTRY_TARGETS, IDS_TARGETS, kind_targets, marks_refresh_sql

# The blind-index kind of each suppression kind (an address is matched by its address hash, not a blind index).
INDEX_KIND = {SuppressionKind.EMAIL: EMAIL, SuppressionKind.EMAIL_DOMAIN: EMAIL_DOMAIN, SuppressionKind.PHONE: PHONE}
_E164 = re.compile(r"^\+[1-9]\d{7,14}$")
_ADDR_HASH = re.compile(r"^[0-9a-f]{64}$")
_DOMAIN = re.compile(r"^[a-z0-9-]+(\.[a-z0-9-]+)+$")


@dataclass
class SuppressionOutcome:
    entry: Suppression
    created: bool
    leads_marked: int = 0


def suppression_value_clean(kind: str, value: str) -> str:
    """The canonical form of a value of `kind` (lower-case e-mail and domain, E.164 phone, address hash), or
    SuppressionInvalid. Callers with free-form input normalise it first (the commands use the ingestion's
    normalisers, so a listed value matches what an upload stores)."""
    value = (value or "").strip()
    if kind == SuppressionKind.EMAIL:
        value = value.lower()
        if value.count("@") != 1 or not _DOMAIN.match(value.rsplit("@", 1)[1]) or value.startswith("@"):
            raise SuppressionInvalid("not an e-mail address")
    elif kind == SuppressionKind.EMAIL_DOMAIN:
        value = value.lower().lstrip("@")
        if not _DOMAIN.match(value):
            raise SuppressionInvalid("not an e-mail domain")
    elif kind == SuppressionKind.PHONE:
        if not _E164.match(value):
            raise SuppressionInvalid("not an E.164 phone number (+15551234567)")
    elif kind == SuppressionKind.ADDRESS:
        value = value.lower()
        if not _ADDR_HASH.match(value):
            raise SuppressionInvalid("an address entry needs the address hash (64 hex digits)")
    else:
        raise SuppressionInvalid(f"unknown kind {kind!r}: one of {', '.join(SuppressionKind.values)}")
    return value


def suppression_label(kind: str, value: str) -> str:
    """What people see of a value: masked (an address: its hash's first digits)."""
    if kind == SuppressionKind.EMAIL:
        return mask_email(value)
    if kind == SuppressionKind.EMAIL_DOMAIN:
        return value  # a domain is not a person
    if kind == SuppressionKind.PHONE:
        return mask_phone(value)
    return f"address {value[:12]}{MASK}"


def suppression_indexes(kind: str, value: str, *, pii=None) -> list[str]:
    """What an entry of `kind` stores for `value`: its blind index under every version, or its address hash.
    `pii`: the codec, for a caller indexing many values (reading the keys once)."""
    if kind == SuppressionKind.ADDRESS:
        return [value]
    return (pii or codec()).blind_indexes(value, INDEX_KIND[kind])


def _who(user) -> str:
    return getattr(user, "get_username", lambda: "")() if user is not None else ""


def leads_marks_refresh(*, targets: str, params: dict) -> list[tuple]:
    """Recompute the marks of the leads `targets` selects; (id, broker, marks) of those that changed, each with
    a `lead_suppression_changed` event. In the caller's transaction."""
    statement = marks_refresh_sql(targets)
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH changed AS ({statement})\n"
            + lead_events_insert_sql(
                "lead_suppression_changed",
                source="changed",
                data_sql="jsonb_build_object('suppressed_channels', suppressed_channels)",
            )
            + " RETURNING lead_id",
            {**params, "upload": None},
        )
        return cursor.fetchall()


def _entry_targets(kind: str, indexes: list[str]) -> tuple[str, dict]:
    return ENTRY_TARGETS[kind], {"indexes": list(indexes)}


def suppression_add(
    *,
    kind: str,
    reason: str,
    source: str,
    value: str | None = None,
    indexes: list[str] | None = None,
    channels: list[str] | None = None,
    note: str = "",
    user=None,
    by: str = "",
) -> SuppressionOutcome:
    """Add `value` (or, for an erased person, only its blind `indexes`) to the list for `reason`, and mark every
    lead it binds now. An active entry of the same kind and reason for the same value is kept as it is
    (`created` False): adding twice changes nothing. Records `suppression_added` (no value in it) and a
    `lead_suppression_changed` event per lead whose marks change. Raises SuppressionInvalid."""
    channels = channels_for(reason, channels)
    if value is None and not indexes:
        raise SuppressionInvalid("give the value (or, for an erased person, its blind indexes)")
    if value is not None:
        value = suppression_value_clean(kind, value)
        stored = suppression_indexes(kind, value)
    else:
        if kind not in SuppressionKind.values:
            raise SuppressionInvalid(f"unknown kind {kind!r}")
        stored = []
    stored += [index for index in indexes or () if index and index not in stored]
    with transaction.atomic():
        with connection.cursor() as cursor:
            # Two adds of one value at once: the second waits, then finds the first.
            cursor.execute(
                "SELECT pg_advisory_xact_lock(hashtext('suppression:' || %s || ':' || %s))", [kind, stored[0]]
            )
        existing = (
            Suppression.objects.active()
            .filter(kind=kind, reason=reason, value_indexes__overlap=stored)
            .order_by("id")
            .first()
        )
        if existing is not None:
            return SuppressionOutcome(entry=existing, created=False)
        pii = codec()
        entry = Suppression.objects.create(
            kind=kind,
            value_indexes=stored,
            value_encrypted=pii.encrypt(value, INDEX_KIND[kind]) if value and kind in INDEX_KIND else "",
            label=suppression_label(kind, value) if value else "(erased person)",
            reason=reason,
            channels=channels,
            source=source[:200],
            note=(note or "")[:2000],
            created_by=user if getattr(user, "pk", None) else None,
            created_by_name=(by or _who(user))[:150],
            # An erased person has no value left to send to Instantly: nothing to sync.
            instantly_synced_at=timezone.now() if reason == SuppressionReason.ERASURE else None,
        )
        targets, params = _entry_targets(kind, stored)
        marked = leads_marks_refresh(targets=targets, params=params)
        record_event(
            "suppression_added",
            data={
                "suppression_id": entry.pk,
                "kind": kind,
                "reason": reason,
                "channels": channels,
                "source": entry.source,
                "by": entry.created_by_name,
                "leads_marked": len(marked),
            },
        )
    return SuppressionOutcome(entry=entry, created=True, leads_marked=len(marked))


def suppression_remove(*, entry: Suppression | int, note: str, user=None, by: str = "") -> SuppressionOutcome:
    """Remove an entry (the row stays, with who and why) and unmark the leads nothing else binds now. An erasure
    entry cannot be removed (the person asked to be forgotten). Records `suppression_removed`."""
    note = (note or "").strip()
    if not note:
        raise SuppressionInvalid("say why the entry is removed")
    with transaction.atomic():
        entry = Suppression.objects.select_for_update().get(pk=getattr(entry, "pk", entry))
        if entry.reason == SuppressionReason.ERASURE:
            raise SuppressionInvalid("an erased person's entry stays: it keeps them from being imported again")
        if entry.removed_at is not None:
            return SuppressionOutcome(entry=entry, created=False)
        entry.removed_at = timezone.now()
        entry.removed_by_name = (by or _who(user))[:150]
        entry.removed_note = note[:2000]
        entry.save(update_fields=["removed_at", "removed_by_name", "removed_note"])
        targets, params = _entry_targets(entry.kind, entry.value_indexes)
        marked = leads_marks_refresh(targets=targets, params=params)
        record_event(
            "suppression_removed",
            data={
                "suppression_id": entry.pk,
                "kind": entry.kind,
                "reason": entry.reason,
                "by": entry.removed_by_name,
                "leads_unmarked": len(marked),
            },
        )
    return SuppressionOutcome(entry=entry, created=False, leads_marked=len(marked))


def suppression_person_erase(*, kind: str, indexes: list[str], by: str = "privacy") -> SuppressionOutcome:
    """An erased person's contact (its blind indexes under every version): their entries keep binding but lose the
    encrypted value and the label that could be read back, and an `erasure` entry (indexes only) keeps them from
    being imported again."""
    Suppression.objects.filter(kind=kind, value_indexes__overlap=indexes).update(
        value_encrypted="", label="(erased person)"
    )
    return suppression_add(kind=kind, reason=SuppressionReason.ERASURE, source="privacy erase", indexes=indexes, by=by)


def suppression_add_for_lead(*, lead, reason: str, source: str, user=None, by: str = "") -> list[SuppressionOutcome]:
    """Add a lead's own e-mail (unsubscribe, bounce) or e-mail and phone (complaint, customer request) to the
    list, so that every other lead with that contact, and every future upload of it, is bound too."""
    channels = channels_for(reason)
    outcomes = []
    # The list and the other leads it marks are beyond a broker's rows: the service's own context, nested in the
    # caller's transaction (the values come from the caller's lead, never from input).
    with service_context():
        if lead.email and "email" in channels:
            with contextlib.suppress(SuppressionInvalid):  # a legacy value the list cannot hold: its status stops it
                outcomes.append(
                    suppression_add(
                        kind=SuppressionKind.EMAIL, value=lead.email, reason=reason, source=source, user=user, by=by
                    )
                )
        if lead.phone and ("phone" in channels or "sms" in channels):
            with contextlib.suppress(SuppressionInvalid):
                outcomes.append(
                    suppression_add(
                        kind=SuppressionKind.PHONE, value=lead.phone, reason=reason, source=source, user=user, by=by
                    )
                )
    return outcomes


def _text_array(values) -> str:
    """A text[] literal of `values` (strings, none NULL), each element quoted: psycopg's quoting of a list,
    element by element, costs an import of 2,000 rows more than its statement."""
    return "{" + ",".join('"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"' for value in values) + "}"


def suppression_import_rows(*, rows: list[dict], source: str, user=None, by: str = "") -> dict:
    """Add many entries in one statement and mark the leads they bind in another. `rows`: dicts of kind,
    value (canonical; see `suppression_value_clean`), reason and, for manual entries, channels. Rows already
    listed (same kind, reason and value) are skipped. Returns {"rows", "added", "already_listed",
    "leads_marked"}. Raises SuppressionInvalid naming the first bad row (1-based) and nothing is added."""
    pii = codec()
    prepared = []
    for number, row in enumerate(rows, start=1):
        try:
            kind = (row.get("kind") or "").strip()
            reason = (row.get("reason") or "").strip()
            channels = channels_for(reason, [part for part in re.split(r"[,;| ]+", row.get("channels") or "") if part])
            value = suppression_value_clean(kind, row.get("value") or "")
        except SuppressionInvalid as error:
            raise SuppressionInvalid(f"row {number}: {error}") from None
        indexes = suppression_indexes(kind, value, pii=pii)
        prepared.append(
            (
                kind,
                indexes,
                pii.encrypt(value, INDEX_KIND[kind]) if kind in INDEX_KIND else "",
                suppression_label(kind, value),
                reason,
                channels,
                (row.get("note") or "")[:2000],
            )
        )
    if not prepared:
        return {"rows": 0, "added": 0, "already_listed": 0, "leads_marked": 0}
    columns = list(zip(*prepared, strict=True))
    who = (by or _who(user))[:150]
    # Each kind's values, for the leads they bind: only the kinds the import holds (a domain's SELECT reads
    # `leads` whole: leads/suppressions/sql.py).
    by_kind: dict[str, set[str]] = {}
    for kind, indexes, *_ in prepared:
        by_kind.setdefault(kind, set()).update(indexes)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext('suppression:import'))")
        # Set-based: one INSERT of the rows not yet listed (nor repeated in the file), then one mark. The rows go
        # in as arrays (no temporary table: its catalog rows cost a bulk do-not-contact 20-40 ms). Each row's
        # "already listed?" is a lookup in the GIN index on value_indexes: the planner cannot estimate `&&` on
        # unique values (it assumes ~0.5% of the list matches) and would scan the whole list once per row
        # (3.5 s for 1,000 rows against 10,000 entries; 0.1 s by the index), so the scan is switched off for
        # this one statement (and JIT, which the switch's penalty cost would trigger).
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(
            """INSERT INTO suppressions (kind, value_indexes, value_encrypted, label, reason, channels, source, note,
                          created_at, created_by_id, created_by_name)
SELECT DISTINCT ON (r.kind, r.reason, (r.indexes::varchar[])[1])
       r.kind, r.indexes::varchar[], r.value_encrypted, r.label, r.reason, r.channels::varchar[], %(source)s,
       r.note, now(), %(user)s, %(by)s
  FROM unnest(%(kinds)s::text[], %(indexes)s::text[], %(encrypted)s::text[], %(labels)s::text[], %(reasons)s::text[],
              %(channels)s::text[], %(notes)s::text[])
       AS r(kind, indexes, value_encrypted, label, reason, channels, note)
 WHERE NOT EXISTS (SELECT 1 FROM suppressions s WHERE s.removed_at IS NULL AND s.kind = r.kind
                      AND s.reason = r.reason AND s.value_indexes && r.indexes::varchar[])
 ORDER BY r.kind, r.reason, (r.indexes::varchar[])[1]""",
            {
                "source": source[:200],
                "user": getattr(user, "pk", None),
                "by": who,
                "kinds": _text_array(columns[0]),
                "indexes": _text_array("{" + ",".join(indexes) + "}" for indexes in columns[1]),
                "encrypted": _text_array(columns[2]),
                "labels": _text_array(columns[3]),
                "reasons": _text_array(columns[4]),
                "channels": _text_array("{" + ",".join(channels) + "}" for channels in columns[5]),
                "notes": _text_array(columns[6]),
            },
        )
        added = cursor.rowcount
        cursor.execute("SET LOCAL enable_seqscan TO DEFAULT")
        # The marks refresh without JIT too: the planner takes each `@>` on the list for ~0.5% of its entries, so
        # a refresh of 1,000 leads is costed like a sort of a million rows, above `jit_above_cost`, and compiled
        # for 6,000 (114 ms of a bulk do-not-contact's 480 under EXPLAIN ANALYZE; 5.5 s when the rows were read
        # from a temporary table, whose size the planner did not know).
        marked = leads_marks_refresh(
            targets="\n UNION ".join(kind_targets(kind, f"indexes_{kind}") for kind in sorted(by_kind)),
            params={f"indexes_{kind}": _text_array(sorted(values)) for kind, values in by_kind.items()},
        )
        cursor.execute("SET LOCAL jit TO DEFAULT")
        counts = {
            "rows": len(prepared),
            "added": added,
            "already_listed": len(prepared) - added,
            "leads_marked": len(marked),
        }
        record_event("suppressions_imported", data={"source": source[:200], "by": who, **counts})
    return counts


def leads_marks_refresh_for(*, lead_ids: list) -> int:
    """Recompute the marks of these leads (after a change of their contact data). Returns how many changed."""
    return len(leads_marks_refresh(targets=IDS_TARGETS, params={"ids": [str(lead_id) for lead_id in lead_ids]}))
