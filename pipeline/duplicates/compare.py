"""Two leads that may be one property, as the possible-duplicates admin shows them: the list's cells and the review
page's rows, side by side. The lead created first is on the left. E-mail and phone are masked for anyone who does
not see personal data (leads/masking.py); whether the two differ is still worked out on the real values."""

from __future__ import annotations

from decimal import Decimal

from django.db.models import Count
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from leads.masking import mask
from leads.models import ConsentToken, Lead, LeadConsentAudit
from pipeline.models import PossibleDuplicate

MASKED = ("email", "phone")


def sides(pair: PossibleDuplicate) -> tuple[Lead, Lead]:
    """(left, right): the lead created first on the left (ties broken by id)."""
    left, right = sorted((pair.lead_a, pair.lead_b), key=lambda lead: (lead.created_at, str(lead.pk)))
    return left, right


def lead_link(lead_id, *, short: bool = True) -> str:
    url = reverse("admin:leads_lead_change", args=[lead_id])
    return format_html('<a href="{}" title="{}">{}</a>', url, lead_id, str(lead_id)[:8] if short else lead_id)


def day(value) -> str:
    return f"{timezone.localtime(value):%Y-%m-%d}" if value else "—"


def lead_cell(lead: Lead, pair: PossibleDuplicate, *, masked: bool = False):
    broker = lead.assigned_broker.name if lead.assigned_broker_id else "no broker"
    lines = [
        format_html("{} <strong>{}</strong>", lead_link(lead.pk), lead.full_name or "(no name)"),
        format_html("{}", ", ".join(part for part in (lead.property_address, lead.property_city) if part) or "—"),
        format_html("APN {} · MAK {}", lead.apn or "—", lead.mak or "—"),
        format_html("{}", (mask("email", lead.email) if masked else lead.email) or "no e-mail"),
        format_html("{} · created {}", broker, day(lead.created_at)),
    ]
    if lead.merged_into_id:
        lines.append(format_html('<span class="pd-tombstone">merged into {}</span>', lead_link(lead.merged_into_id)))
    elif pair.survivor_id == lead.pk:
        lines.append(mark_safe('<span class="pd-kept">kept (survivor)</span>'))
    return format_html('<div class="pd-lead">{}</div>', format_html_join("", "<div>{}</div>", ((x,) for x in lines)))


# --- the change page --------------------------------------------------------------------------------------


def _shown(value) -> str:
    if value is None or value == "" or value == []:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Decimal):
        return f"{value:,.0f}"
    if hasattr(value, "tzinfo"):
        return f"{timezone.localtime(value):%Y-%m-%d %H:%M}"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(item) for item in value)
    return str(value)


def _consent(lead: Lead) -> str:
    if not lead.consent:
        return "no"
    return f"yes, {_shown(lead.consented_at)} ({lead.consent_method or 'no method'})"


# The lead's attributes compared, in order; each labelled by its field's name. All but the times are
# highlighted when the two leads differ.
COMPARED = (
    *("full_name", "owner2_name", "email", "phone"),
    *("property_address", "property_city", "property_state", "property_zip", "apn", "mak", "addr_hash"),
    *("assigned_broker", "campaign_status", "lead_score", "consent", "email_verified", "phone_verified"),
    *("property_value", "estimated_equity", "property_type", "age", "owner_occupied", "do_not_contact_reason"),
    *("instantly_lead_id", "source", "source_upload_id", "created_at", "updated_at"),
)
NOT_HIGHLIGHTED = {"created_at", "updated_at"}
SHOWN_BY = {"consent": _consent}


def _label(name: str) -> str:
    return "name" if name == "full_name" else str(Lead._meta.get_field(name).verbose_name)


def compare_rows(left: Lead, right: Lead, *, masked: bool = False) -> list[dict]:
    """The two leads field by field; `differs` marks what a person should look at."""
    ids = [left.pk, right.pk]
    counted = {
        label: dict(model.objects.filter(lead_id__in=ids).order_by().values_list("lead_id").annotate(Count("id")))
        for model, label in ((LeadConsentAudit, "consent records"), (ConsentToken, "consent links"))
    }
    both = (left, right)
    tombstones = {lead.pk: lead.merged_into_id for lead in both if lead.merged_into_id}
    rows = [{"label": "lead", "left": lead_link(left.pk, short=False), "right": lead_link(right.pk, short=False)}]
    for name in COMPARED:
        show = SHOWN_BY.get(name, lambda lead, name=name: _shown(getattr(lead, name)))
        left_value, right_value = show(left), show(right)
        differs = name not in NOT_HIGHLIGHTED and left_value != right_value
        if masked and name in MASKED:
            left_value, right_value = mask(name, getattr(left, name)) or "—", mask(name, getattr(right, name)) or "—"
        rows.append({"label": _label(name), "left": left_value, "right": right_value, "differs": differs})
    for label, found in counted.items():
        values = found.get(left.pk, 0), found.get(right.pk, 0)
        rows.append({"label": label, "left": values[0], "right": values[1], "differs": values[0] != values[1]})
    if tombstones:  # a decided pair: the tombstone's side links to where it went
        shown = [lead_link(tombstones[lead.pk], short=False) if lead.pk in tombstones else "—" for lead in both]
        rows.append({"label": "merged into", "left": shown[0], "right": shown[1], "differs": True})
    return rows
