"""Possible duplicates, decided by a person: merge one lead into the other, or keep them apart (remembered,
so the pair is never proposed again). The admin's actions call these and nothing else.

A merge is the seed's safe merge, lead into lead: the survivor keeps its contact data, broker, campaign
status and keys and fills what it lacks from the other; verified flags are OR-ed, codes unioned, payloads
merged. The merged-away lead stays as a tombstone (`merged_into` the survivor: links and events still
resolve), without keys or contact data; its consent links move to the survivor, its consent records stay
where they were given (nobody may change them: the survivor's consent history shows them, through
`merged_into`), and its Instantly sequence is stopped. Both timelines record the merge.
"""

from __future__ import annotations

from functools import partial

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django_q.tasks import async_task

from equity_connect.events import record_event
from leads.columns import CODES, FLAGS, INDEXED_WITH, INGESTED, KEEP_NEWEST, KEYS
from leads.models import ConsentToken, Lead
from leads.scoring import leads_rescore
from leads.services import lead_verified_record
from pipeline.models import PossibleDuplicate, PossibleDuplicateStatus


class DuplicateError(Exception):
    """A decision that cannot be made; the message is safe to show."""


def _lock(pair: PossibleDuplicate) -> tuple[PossibleDuplicate, Lead, Lead]:
    pair = PossibleDuplicate.objects.select_for_update().get(pk=pair.pk)
    if pair.status != PossibleDuplicateStatus.OPEN:
        raise DuplicateError(f"possible duplicate #{pair.pk} was already decided ({pair.get_status_display()})")
    leads = {
        lead.pk: lead for lead in Lead.objects.select_for_update().filter(pk__in=[pair.lead_a_id, pair.lead_b_id])
    }
    a, b = leads.get(pair.lead_a_id), leads.get(pair.lead_b_id)
    if a is None or b is None:
        raise DuplicateError(f"possible duplicate #{pair.pk}: one of its leads no longer exists")
    if a.merged_into_id or b.merged_into_id:
        raise DuplicateError(f"possible duplicate #{pair.pk}: one of its leads was already merged into another")
    return pair, a, b


# A verification belongs to its contact point: it follows the e-mail or phone it was made for.
VERIFIED_WITH = {
    "email_verified": "email",
    "email_verification_codes": "email",
    "phone_verified": "phone",
    "phone_verification_codes": "phone",
}


def _merge_values(survivor: Lead, other: Lead) -> list[str]:
    """Fill the survivor from the other lead (the safe merge). Returns the changed field names."""
    changed = []
    # The same contact: the same blind index (the values are encrypted; both leads' indexes are current, set
    # on every save and by `reencrypt`).
    same_contact = {
        point: getattr(survivor, f"{point}_bidx") == getattr(other, f"{point}_bidx") or not getattr(survivor, point)
        for point in ("email", "phone")
    }
    for column in INGESTED:
        if column in KEYS or column in INDEXED_WITH:
            continue
        mine, theirs = getattr(survivor, column), getattr(other, column)
        if column in VERIFIED_WITH and not same_contact[VERIFIED_WITH[column]]:
            continue  # the survivor keeps its own e-mail or phone, and that one's verification
        if column in FLAGS:
            value = bool(mine) or bool(theirs)
        elif column in CODES:
            value = sorted(set(mine or []) | set(theirs or []))
        elif column == "melissa_payload":
            value = {**(theirs or {}), **(mine or {})}
        elif column in KEEP_NEWEST:
            value = mine if mine is not None else theirs
        else:
            value = mine if mine not in (None, "") else theirs
        if value != mine:
            setattr(survivor, column, value)
            changed.append(column)
    for column, point in INDEXED_WITH.items():  # a blind index follows its e-mail or phone
        if point in changed and getattr(survivor, column) != getattr(other, column):
            setattr(survivor, column, getattr(other, column))
            changed.append(column)
    return changed


def possible_duplicate_merge(*, pair: PossibleDuplicate, survivor_id, user=None, note: str = "") -> Lead:
    """Merge the pair's other lead into `survivor_id` (one of the pair's two leads). Changes both leads,
    moves the merged-away lead's consent links, closes this pair (and repoints or closes the
    merged-away lead's other open pairs), stops its Instantly sequence after commit. Records
    `lead_merged` on the survivor's timeline and `lead_merged_away` on the other's."""
    with transaction.atomic():
        pair, a, b = _lock(pair)
        if str(survivor_id) not in (str(a.pk), str(b.pk)):
            raise DuplicateError("the lead to keep must be one of the pair")
        survivor, other = (a, b) if str(survivor_id) == str(a.pk) else (b, a)
        verified_before = {flag: getattr(survivor, flag) for flag in ("email_verified", "phone_verified")}
        changed = _merge_values(survivor, other)
        took_contact = bool(other.email_bidx) and survivor.email_bidx == other.email_bidx and "email" in changed
        if took_contact and other.consent and not survivor.consent:
            survivor.consent, survivor.consented_at, survivor.consent_method = (
                True,
                other.consented_at,
                other.consent_method,
            )
            survivor.consent_email, survivor.consent_sms, survivor.consent_phone = (
                other.consent_email,
                other.consent_sms,
                other.consent_phone,
            )
            changed += ["consent", "consent_email", "consent_sms", "consent_phone", "consented_at", "consent_method"]
        keys = {key: getattr(other, key) for key in KEYS if getattr(survivor, key) is None and getattr(other, key)}
        sequence = other.instantly_lead_id
        # The tombstone first gives up its keys and contact data, so the survivor can take the keys.
        Lead.objects.filter(pk=other.pk).update(
            merged_into=survivor,
            mak=None,
            apn=None,
            addr_hash=None,
            email=None,
            phone=None,
            **dict.fromkeys(INDEXED_WITH),
            consent=False,
            consented_at=None,
            instantly_lead_id=None,
            updated_at=timezone.now(),
        )
        for key, value in keys.items():
            setattr(survivor, key, value)
        survivor.save(update_fields=[*changed, *keys, "updated_at"])
        leads_rescore(lead_ids=[survivor.pk])  # what it gained may change its score
        ConsentToken.objects.filter(lead=other).update(lead=survivor)
        now = timezone.now()
        pair.status, pair.survivor, pair.decided_by, pair.decided_at, pair.note = (
            PossibleDuplicateStatus.MERGED,
            survivor,
            user if getattr(user, "pk", None) else None,
            now,
            (note or "").strip(),
        )
        pair.save(update_fields=["status", "survivor", "decided_by", "decided_at", "note"])
        _repoint_pairs(merged_away=other, survivor=survivor, user=user, now=now)
        by = getattr(user, "get_username", lambda: None)()
        record_event(
            "lead_merged",
            lead_id=survivor.pk,
            broker_id=survivor.assigned_broker_id,
            data={"merged_lead": str(other.pk), "possible_duplicate": pair.pk, "fields": changed, "by": by},
        )
        lead_verified_record(lead=survivor, before=verified_before, by=by, via="possible_duplicate_merge")
        record_event(
            "lead_merged_away",
            lead_id=other.pk,
            broker_id=other.assigned_broker_id,
            data={"survivor": str(survivor.pk), "possible_duplicate": pair.pk, "by": by},
        )
        if sequence:
            transaction.on_commit(
                partial(
                    async_task,
                    "pipeline.tasks.instantly_sequences_stop",
                    [[str(other.pk), sequence]],
                    task_name="stop sequences",
                    group="instantly",
                )
            )
    return survivor


def _repoint_pairs(*, merged_away: Lead, survivor: Lead, user, now) -> None:
    """The merged-away lead's other open pairs: now about the survivor (or closed, when that is the pair)."""
    others = PossibleDuplicate.objects.select_for_update().filter(
        Q(lead_a=merged_away) | Q(lead_b=merged_away), status=PossibleDuplicateStatus.OPEN
    )
    for pair in others:
        other_id = pair.lead_b_id if pair.lead_a_id == merged_away.pk else pair.lead_a_id
        low, high = sorted([survivor.pk, other_id], key=str)
        if other_id == survivor.pk or PossibleDuplicate.objects.filter(lead_a_id=low, lead_b_id=high).exists():
            pair.status, pair.survivor, pair.decided_by, pair.decided_at = (
                PossibleDuplicateStatus.MERGED,
                survivor,
                user if getattr(user, "pk", None) else None,
                now,
            )
            pair.note = f"closed by the merge into {survivor.pk}"
            pair.save(update_fields=["status", "survivor", "decided_by", "decided_at", "note"])
        else:
            pair.lead_a_id, pair.lead_b_id = low, high
            pair.save(update_fields=["lead_a", "lead_b"])


def possible_duplicate_keep_apart(*, pair: PossibleDuplicate, user=None, note: str = "") -> PossibleDuplicate:
    """Decide that the two leads are different properties: the pair is never proposed again. Records
    `lead_kept_apart` on both timelines."""
    with transaction.atomic():
        pair, a, b = _lock(pair)
        pair.status, pair.decided_by, pair.decided_at, pair.note = (
            PossibleDuplicateStatus.KEPT_APART,
            user if getattr(user, "pk", None) else None,
            timezone.now(),
            (note or "").strip(),
        )
        pair.save(update_fields=["status", "decided_by", "decided_at", "note"])
        by = getattr(user, "get_username", lambda: None)()
        for lead, other in ((a, b), (b, a)):
            record_event(
                "lead_kept_apart",
                lead_id=lead.pk,
                broker_id=lead.assigned_broker_id,
                data={"other_lead": str(other.pk), "possible_duplicate": pair.pk, "reason": pair.reason, "by": by},
            )
    return pair
