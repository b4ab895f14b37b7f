"""Read paths of the broker portal: the lead list (filters, search, sort, pages), a lead's detail parts
and timeline. (The broker's dashboard figures come from pipeline/monitoring/dashboard.py, shared with staff.)

Every selector takes the broker and scopes through `Lead.objects.for_broker(broker)`; the request's RLS
context (authenticated + the broker's id) is the second wall.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.db import connection
from django.db.models import BooleanField, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.utils import timezone

from security.pii import EMAIL, PHONE

from .contact_indexes import indexes_of, search_indexes
from .models import Lead, LeadConsentAudit, VerificationCodeMap
from .timeline import EVENT_LABELS, TimelineEntry, lead_timeline  # noqa: F401  (the timeline is read from here)

# The searched text: `lead_search.document`, written by `lead_search_document()` (leads migration 0026_lead_search;
# a test checks they agree). E-mail and phone are encrypted, so they are not in it: an exact e-mail, phone or
# phone's last four digits is found by its blind index (`search_indexes`).
SEARCH_EXPRESSION = (
    "(coalesce(first_name, '') || ' ' || coalesce(last_name, '') || ' ' || coalesce(property_address, '')"
    " || ' ' || coalesce(property_city, '') || ' ' || coalesce(apn, ''))"
)

SORTS = {
    "newest": ("-created_at", "-id"),
    "oldest": ("created_at", "id"),
    "score": ("-lead_score", "-created_at", "-id"),
    "score_low": ("lead_score", "-created_at", "-id"),
    "name": ("last_name", "first_name", "id"),
    "status": ("campaign_status", "-created_at", "-id"),
    "name_desc": ("-last_name", "-first_name", "-id"),
    "status_desc": ("-campaign_status", "-created_at", "-id"),
}
SORT_LABELS = {
    "newest": "Newest first",
    "oldest": "Oldest first",
    "score": "Highest score",
    "score_low": "Lowest score",
    "name": "Name (A-Z)",
    "status": "Campaign status",
    "name_desc": "Name (Z-A)",
    "status_desc": "Campaign status (reversed)",
}
DEFAULT_SORT = "newest"
PAGE_SIZE = 50
PAGE_SIZES = (25, 50, 100, 200)
# The list's total is exact up to this many matches; beyond it the planner's estimate is shown as "about N"
# (counting every match of a broad filter over a large book costs more than the page itself).
COUNT_CAP = 10_000
# A page number past this is read as this one (its offset stays far inside the database's integer range).
MAX_PAGE = 100_000


@dataclass(frozen=True)
class LeadFilters:
    campaign_status: tuple[str, ...] = ()
    email_verified: bool | None = None
    phone_verified: bool | None = None
    consent: bool | None = None
    score_min: int | None = None
    score_max: int | None = None
    created_from: date | None = None
    created_to: date | None = None
    search: str = ""
    sort: str = DEFAULT_SORT


@dataclass
class LeadPage:
    leads: list
    page: int
    page_size: int
    has_next: bool
    count: int
    count_capped: bool
    first_index: int = field(init=False)
    last_index: int = field(init=False)

    def __post_init__(self):
        self.first_index = (self.page - 1) * self.page_size + 1 if self.leads else 0
        self.last_index = (self.page - 1) * self.page_size + len(self.leads)

    @property
    def has_previous(self) -> bool:
        return self.page > 1


def _escape_like(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _search_alternatives(search: str) -> list[list[str]]:
    """ILIKE patterns: every whitespace-separated term must match (AND). (A phone number is no longer in the
    searched text: `(415) 555-0199` finds `+14155550199` through its blind index, `search_indexes`.)"""
    return [[f"%{_escape_like(term)}%" for term in search.strip().split()[:8]]]


def _search_document(filters: LeadFilters) -> dict:
    """The filters as the JSON document `portal_lead_search()` reads (migrations 0004, 0014 and 0025)."""
    document: dict = {"pattern_groups": _search_alternatives(filters.search)}
    contact = search_indexes(filters.search)
    if contact:  # or the term is the lead's exact e-mail, phone or last four digits (migration 0014)
        document["contact_indexes"] = contact
    if filters.campaign_status:
        document["statuses"] = list(filters.campaign_status)
    for name in ("email_verified", "phone_verified", "consent", "score_min", "score_max"):
        if getattr(filters, name) is not None:
            document[name] = getattr(filters, name)
    start, end = _created_bounds(filters)
    if start is not None:
        document["created_from"] = start.isoformat()
    if end is not None:
        document["created_before"] = end.isoformat()
    return document


def _search_ids(filters: LeadFilters, *, limit: int | None, offset: int = 0) -> tuple[list, int | None]:
    """(ids, total): one page of the calling broker's leads matching `filters` (search included), in the
    list's order, and how many match in all (None when the page is empty).

    Under row-level security PostgreSQL will not use an index for `ILIKE` (not a leakproof operator), so
    a plain query scans every one of the broker's rows. `portal_lead_search()` (migrations 0004, 0025) runs the
    same search with the indexes, limited to the calling broker's leads (`auth.uid()`), and returns ids;
    the rows are then read through RLS as usual."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, total FROM portal_lead_search(%s::jsonb, %s, %s, %s)",
            [json.dumps(_search_document(filters)), sort_key(filters), limit, offset],
        )
        rows = cursor.fetchall()
    return [row[0] for row in rows], (rows[0][1] if rows else None)


def _id_in(ids: list) -> RawSQL:
    # One array parameter, not one parameter per id (a broad search can match tens of thousands).
    return RawSQL('"leads"."id" = ANY(%s::uuid[])', (ids,), output_field=BooleanField())


def sort_key(filters: LeadFilters) -> str:
    return filters.sort if filters.sort in SORTS else DEFAULT_SORT


def _filtered(*, broker, filters: LeadFilters) -> QuerySet:
    """The broker's leads matching every filter except the search; never the tombstones of merged leads
    (`portal_lead_search()` may still return their ids: the rows are read through this query set)."""
    queryset = Lead.objects.for_broker(broker).live()
    if filters.campaign_status:
        queryset = queryset.filter(campaign_status__in=filters.campaign_status)
    for name in ("email_verified", "phone_verified", "consent"):
        value = getattr(filters, name)
        if value is not None:
            queryset = queryset.filter(**{name: value})
    if filters.score_min is not None:
        queryset = queryset.filter(lead_score__gte=filters.score_min)
    if filters.score_max is not None:
        queryset = queryset.filter(lead_score__lte=filters.score_max)
    start, end = _created_bounds(filters)
    if start is not None:
        queryset = queryset.filter(created_at__gte=start)
    if end is not None:
        queryset = queryset.filter(created_at__lt=end)
    return queryset


def _created_bounds(filters: LeadFilters) -> tuple[datetime | None, datetime | None]:
    """The created-date filters as [start, end) in the local time zone; a bound past the calendar's end (the day
    after 9999-12-31) is no bound."""
    tz = timezone.get_current_timezone()
    start = datetime.combine(filters.created_from, time.min, tz) if filters.created_from is not None else None
    end = None
    if filters.created_to is not None and filters.created_to < date.max:
        end = datetime.combine(filters.created_to + timedelta(days=1), time.min, tz)
    return start, end


def lead_list(*, broker, filters: LeadFilters) -> QuerySet:
    """The broker's leads matching `filters`, sorted (a stable order: ties broken by id). With a search,
    the matching ids come from `portal_lead_search()` and the filters are applied again on top."""
    queryset = _filtered(broker=broker, filters=filters)
    if filters.search.strip():
        queryset = queryset.filter(_id_in(_search_ids(filters, limit=None)[0]))
    return queryset.order_by(*SORTS[sort_key(filters)])


def lead_page(*, broker, filters: LeadFilters, page: int, page_size: int = PAGE_SIZE) -> LeadPage:
    """One page of `lead_list`, without a COUNT(*) over everything: one row more than the page is fetched
    to know whether there is a next page; without a search the total is counted exactly up to COUNT_CAP and
    estimated beyond (`count_capped`: the page says "about N"). The search function counts its matches."""
    page = min(max(1, page), MAX_PAGE)
    offset = (page - 1) * page_size
    queryset = _filtered(broker=broker, filters=filters).order_by(*SORTS[sort_key(filters)])
    total = None
    if filters.search.strip():
        # The function's ids may include tombstones, which the query set drops: the page is this page's ids
        # (in the same order as the function's), so a row never shows on two pages.
        ids, total = _search_ids(filters, limit=page_size + 1, offset=offset)
        rows = list(queryset.filter(_id_in(ids[:page_size]))) if ids else []
        has_next = len(ids) > page_size
    else:
        rows = list(queryset[offset : offset + page_size + 1])
        has_next = len(rows) > page_size
    rows = rows[:page_size]
    if not rows and page > 1:
        # Past the end (an old link, a hand-written ?page=): the last page instead.
        last = max(1, -(-_count(queryset, filters) // page_size))
        if last < page:
            return lead_page(broker=broker, filters=filters, page=last, page_size=page_size)
    if not has_next:
        count, capped = offset + len(rows), False
    elif total is not None:
        count, capped = total, False  # the search function counted every match while sorting them
    elif offset + len(rows) + 1 > COUNT_CAP:
        count, capped = _estimate(queryset, at_least=offset + len(rows) + 1), True  # past the cap: no count
    else:
        counted = queryset.order_by()[: COUNT_CAP + 1].count()
        count, capped = (_estimate(queryset, at_least=counted), True) if counted > COUNT_CAP else (counted, False)
    return LeadPage(leads=rows, page=page, page_size=page_size, has_next=has_next, count=count, count_capped=capped)


def _estimate(queryset: QuerySet, *, at_least: int) -> int:
    """The planner's estimate of how many rows the query set matches (EXPLAIN, nothing is read), never below
    `at_least` (what was already seen), rounded up to two significant digits: it is shown as "about N"."""
    plan = json.loads(queryset.order_by().explain(format="json"))
    estimate = max(int(plan[0]["Plan"]["Plan Rows"]), at_least)
    step = 10 ** max(len(str(estimate)) - 2, 0)
    return -(-estimate // step) * step  # rounded up: never below what was seen


def _count(queryset: QuerySet, filters: LeadFilters) -> int:
    """How many of the broker's leads match (the search function counts its own matches)."""
    if filters.search.strip():
        return _search_ids(filters, limit=1)[1] or 0
    return queryset.order_by().count()


def lead_get(*, broker, lead_id) -> Lead:
    """One of the broker's leads; Lead.DoesNotExist for any other (the view turns it into a 404)."""
    return Lead.objects.for_broker(broker).select_related("assigned_broker").get(pk=lead_id)


def lead_survivor(*, broker, lead: Lead, max_hops: int = 10) -> Lead | None:
    """The live lead a tombstone was merged into (through merges of merges), when it is the broker's own;
    None when it is not (or the chain is broken)."""
    current, seen = lead, {lead.pk}
    while current.merged_into_id is not None:
        if current.merged_into_id in seen or len(seen) > max_hops:
            return None
        seen.add(current.merged_into_id)
        current = Lead.objects.for_broker(broker).filter(pk=current.merged_into_id).first()
        if current is None:
            return None
    return current


def lead_verification_codes(*, lead: Lead) -> dict[str, list[dict]]:
    """The lead's email and phone codes with their meaning from `verification_code_map`."""
    wanted = {("email", code) for code in lead.email_verification_codes or []}
    wanted |= {("phone", code) for code in lead.phone_verification_codes or []}
    known = {}
    if wanted:
        codes = {code for _, code in wanted}
        for row in VerificationCodeMap.objects.filter(code__in=codes):
            known[(row.channel, row.code)] = row
    result: dict[str, list[dict]] = {"email": [], "phone": []}
    for channel, codes in (("email", lead.email_verification_codes), ("phone", lead.phone_verification_codes)):
        for code in codes or []:
            row = known.get((channel, code))
            result[channel].append(
                {
                    "code": code,
                    "known": row is not None,
                    "is_verified": bool(row and row.is_verified),
                    "description": row.description if row else "Unknown code (not in the verification-code map)",
                }
            )
    return result


def lead_consent_history(*, lead: Lead) -> list:
    """The lead's consent records and those of the leads merged into it, newest first. Records stay with the
    lead they were given for (nobody rewrites them); `lead_merge_family()` (migration 0008) finds the merged
    leads, which may be another broker's, and the read policy lets the survivor's broker see their records."""
    family = RawSQL("SELECT lead_merge_family(%s)", (lead.pk,))
    return list(LeadConsentAudit.objects.filter(lead_id__in=family).order_by("-created_at", "-id")[:50])


def person_leads(*, email: str | None = None, phone: str | None = None) -> QuerySet:
    """Every lead of one person (merged tombstones included): the leads with this e-mail address or this phone
    number, both already normalised as ingestion stores them (lower-case address, E.164 number), found by their
    blind indexes under every key version (leads/contact_indexes.py). The one place a person is looked up for
    their rights (pipeline/privacy). Needs a context that sees every lead."""
    if not email and not phone:
        raise ValueError("a person is found by e-mail or phone")
    condition = Q()
    if email:
        condition |= Q(email_bidx__in=indexes_of(email, EMAIL))
    if phone:
        condition |= Q(phone_bidx__in=indexes_of(phone, PHONE))
    return Lead.objects.filter(condition).order_by("created_at", "id")


@dataclass(frozen=True)
class Neighbours:
    """The leads before and after one lead in a list view, with the list pages they are on."""

    previous_id: object = None
    previous_page: int = 1
    next_id: object = None
    next_page: int = 1
    position: int | None = None  # 1-based, in the whole list


def lead_neighbours(*, broker, filters: LeadFilters, lead_id, page: int, page_size: int = PAGE_SIZE) -> Neighbours:
    """The previous and next lead around `lead_id` in the list view (`filters`, search and sort included) on
    list page `page`: one page read, and the adjacent page's only when the lead is at either end of its page.
    Empty when the lead is not on that page (the list changed since, or the link was typed)."""
    current = lead_page(broker=broker, filters=filters, page=page, page_size=page_size)
    ids = [lead.pk for lead in current.leads]
    if lead_id not in ids:
        return Neighbours()
    index = ids.index(lead_id)
    previous_id, previous_page = (ids[index - 1], current.page) if index > 0 else (None, current.page)
    if previous_id is None and current.has_previous:
        before = lead_page(broker=broker, filters=filters, page=current.page - 1, page_size=page_size)
        previous_id, previous_page = (before.leads[-1].pk, before.page) if before.leads else (None, current.page)
    next_id, next_page = (ids[index + 1], current.page) if index + 1 < len(ids) else (None, current.page)
    if next_id is None and current.has_next:
        after = lead_page(broker=broker, filters=filters, page=current.page + 1, page_size=page_size)
        next_id, next_page = (after.leads[0].pk, after.page) if after.leads else (None, current.page)
    return Neighbours(
        previous_id=previous_id,
        previous_page=previous_page,
        next_id=next_id,
        next_page=next_page,
        position=(current.page - 1) * page_size + index + 1,
    )
