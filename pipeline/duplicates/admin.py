"""Possible duplicates in the admin: ops see two leads that may be one property side by side and decide —
merge one into the other, or keep them apart. A pair is a decision record: never added, edited or deleted
here; every decision goes through pipeline/duplicates/services.py.

The two leads are shown oldest first: "left" is the lead created first, "right" the other one.
"""

from __future__ import annotations

import logging
import re
import uuid

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from leads.access import access_record
from leads.masking import PiiMaskingMixin
from pipeline.models import PossibleDuplicate, PossibleDuplicateStatus

from .compare import compare_rows, day, lead_cell, sides
from .services import DuplicateError, possible_duplicate_keep_apart, possible_duplicate_merge

logger = logging.getLogger(__name__)

KEY_LABELS = {"apn": "same APN", "addr_hash": "same address", "mak": "same MAK"}
_UUID = re.compile(r"\b([0-9a-f]{8})-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")
# Bulk actions list at most this many skipped pairs by name (the count is always complete).
SKIPPED_SHOWN = 20


# --- the list ---------------------------------------------------------------------------------------------


class StatusFilter(admin.SimpleListFilter):
    """Open pairs unless asked otherwise; "All" clears it (`?status=all`)."""

    title = "status"
    parameter_name = "status"
    ALL = "all"

    def lookups(self, request, model_admin):
        return [("open", "Open"), ("merged", "Merged"), ("kept_apart", "Kept apart"), (self.ALL, "All")]

    def chosen(self) -> str:
        value = self.value()
        return value if value in (*PossibleDuplicateStatus.values, self.ALL) else PossibleDuplicateStatus.OPEN

    def queryset(self, request, queryset):
        chosen = self.chosen()
        return queryset if chosen == self.ALL else queryset.filter(status=chosen)

    def choices(self, changelist):
        counts = self.get_facet_queryset(changelist) if changelist.add_facets else None
        for i, (lookup, title) in enumerate(self.lookup_choices):
            if counts is not None:
                title = f"{title} ({counts.get(f'{i}__c', '-')})"
            if lookup == PossibleDuplicateStatus.OPEN:
                query_string = changelist.get_query_string(remove=[self.parameter_name])
            else:
                query_string = changelist.get_query_string({self.parameter_name: lookup})
            yield {"selected": self.chosen() == lookup, "query_string": query_string, "display": title}


class KeyFilter(admin.SimpleListFilter):
    title = "reason"
    parameter_name = "key"

    def lookups(self, request, model_admin):
        return list(KEY_LABELS.items())

    def queryset(self, request, queryset):
        return queryset.filter(key=self.value()) if self.value() else queryset


class DecisionForm(forms.Form):
    note = forms.CharField(
        required=False,
        max_length=2000,
        strip=True,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 80}),
        help_text="Optional: why (kept with the decision).",
    )


# --- the admin --------------------------------------------------------------------------------------------


@admin.register(PossibleDuplicate)
class PossibleDuplicateAdmin(PiiMaskingMixin, admin.ModelAdmin):
    pii_via = "admin.possible_duplicate"
    pii_swaps = {"left_lead": "masked_left_lead", "right_lead": "masked_right_lead"}
    list_display = ("pair", "left_lead", "right_lead", "why", "upload_link", "decision", "created_day")
    list_display_links = ("pair",)
    list_filter = (
        StatusFilter,
        ("upload__partner", admin.RelatedOnlyFieldListFilter),
        ("upload", admin.RelatedOnlyFieldListFilter),
        KeyFilter,
    )
    list_select_related = (
        "lead_a__assigned_broker",
        "lead_b__assigned_broker",
        "upload__partner",
        "decided_by",
    )
    list_per_page = 50
    search_fields = ("reason",)  # the search itself is get_search_results: a lead id, an APN or a pair number
    search_help_text = "A lead id, an APN, or a pair number (#12)."
    actions = ("merge_into_older", "keep_apart_selected")
    review_template = "admin/pipeline/possibleduplicate/review.html"

    # A decision record: nothing is added, edited or deleted by hand.
    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        try:
            lead_id = uuid.UUID(term)
        except ValueError:
            pass
        else:
            return queryset.filter(Q(lead_a_id=lead_id) | Q(lead_b_id=lead_id)), False
        key = " ".join(term.split()).upper()
        found = Q(lead_a__apn=key) | Q(lead_b__apn=key) | Q(reason__contains=key)
        if term.lstrip("#").isdigit():
            found |= Q(pk=int(term.lstrip("#")))
        return queryset.filter(found), False

    @admin.display(description="pair", ordering="pk")
    def pair(self, obj):
        return f"#{obj.pk}"

    @admin.display(description="left lead (older)")
    def left_lead(self, obj):
        return lead_cell(sides(obj)[0], obj)

    @admin.display(description="right lead (newer)")
    def right_lead(self, obj):
        return lead_cell(sides(obj)[1], obj)

    @admin.display(description="left lead (older)")
    def masked_left_lead(self, obj):
        return lead_cell(sides(obj)[0], obj, masked=True)

    @admin.display(description="right lead (newer)")
    def masked_right_lead(self, obj):
        return lead_cell(sides(obj)[1], obj, masked=True)

    # --- personal data: e-mail and phone of both leads, masked for ops ---------------------------------------

    def pii_lead_ids(self, obj) -> list:
        return [lead.pk for lead in sides(obj)]

    def pii_labels(self) -> list[str]:
        return ["e-mail", "phone"]

    def pii_values(self, obj) -> list[tuple[str, object]]:
        left, right = sides(obj)
        return [
            (f"{side} lead's {label}", getattr(lead, name))
            for side, lead in (("left", left), ("right", right))
            for label, name in (("e-mail", "email"), ("phone", "phone"))
        ]

    @admin.display(description="reason", ordering="key")
    def why(self, obj):
        # "same address as lead <id>, APN 1 ≠ 2": the class, then what differs (the ids are in the lead columns).
        detail = obj.reason.split(", ", 1)[-1] if ", " in obj.reason else _UUID.sub(r"\1", obj.reason)
        return format_html(
            '<strong>{}</strong><div class="pd-reason" title="{}">{}</div>',
            KEY_LABELS.get(obj.key, obj.key),
            obj.reason,
            detail,
        )

    @admin.display(description="upload", ordering="upload")
    def upload_link(self, obj):
        if obj.upload_id is None:
            return "—"
        return format_html(
            '<a href="{}" title="{}">{}</a><div>{}</div>',
            reverse("admin:pipeline_upload_change", args=[obj.upload_id]),
            obj.upload_id,
            str(obj.upload_id)[:8],
            obj.upload.partner.name if obj.upload.partner_id else "no partner",
        )

    @admin.display(description="status", ordering="status")
    def decision(self, obj):
        if obj.status == PossibleDuplicateStatus.OPEN:
            return "open"
        who = obj.decided_by.get_username() if obj.decided_by_id else "—"
        return format_html("{}<div>{} · {}</div>", obj.get_status_display().lower(), who, day(obj.decided_at))

    @admin.display(description="proposed", ordering="created_at")
    def created_day(self, obj):
        created = timezone.localtime(obj.created_at)
        return format_html("{}<div>{}</div>", f"{created:%Y-%m-%d}", f"{created:%H:%M}")

    # --- the change page: the two leads side by side and the decision --------------------------------------

    def change_view(self, request, object_id, form_url="", extra_context=None):
        pair = self.get_object(request, unquote(object_id))
        if pair is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_view_or_change_permission(request, pair):
            raise PermissionDenied
        if request.method == "POST":
            if not self.has_change_permission(request, pair):
                raise PermissionDenied
            self._decide(request, pair)
            return HttpResponseRedirect(request.path)
        left, right = sides(pair)
        masked = not self.pii_visible(request)
        access_record(request=request, action="view", via=self.pii_via, lead_ids=[left.pk, right.pk])
        context = {
            **self.admin_site.each_context(request),
            **(extra_context or {}),
            "title": f"Possible duplicate #{pair.pk}",
            "opts": self.opts,
            "pair": pair,
            "key_label": KEY_LABELS.get(pair.key, pair.key),
            "left": left,
            "right": right,
            "rows": compare_rows(left, right, masked=masked),
            "reveal_url": self.pii_reveal_url(pair) if masked else None,
            "form": DecisionForm(),
            "can_decide": pair.status == PossibleDuplicateStatus.OPEN and self.has_change_permission(request, pair),
            "upload_url": reverse("admin:pipeline_upload_change", args=[pair.upload_id]) if pair.upload_id else None,
        }
        return TemplateResponse(request, self.review_template, context)

    def get_object(self, request, object_id, from_field=None):
        try:
            return PossibleDuplicate.objects.select_related(
                "lead_a__assigned_broker", "lead_b__assigned_broker", "upload__partner", "survivor", "decided_by"
            ).get(pk=int(object_id))
        except (ValueError, PossibleDuplicate.DoesNotExist):
            return None

    def _decide(self, request, pair: PossibleDuplicate) -> None:
        form = DecisionForm(request.POST)
        if not form.is_valid():
            self.message_user(request, f"Possible duplicate #{pair.pk}: the note is too long.", messages.ERROR)
            return
        note = form.cleaned_data["note"]
        survivor_id = request.POST.get("_merge_into")
        try:
            if survivor_id:
                survivor = possible_duplicate_merge(pair=pair, survivor_id=survivor_id, user=request.user, note=note)
                merged = pair.lead_b_id if str(survivor.pk) == str(pair.lead_a_id) else pair.lead_a_id
                self.message_user(
                    request,
                    f"Possible duplicate #{pair.pk}: lead {merged} was merged into lead {survivor.pk}.",
                    messages.SUCCESS,
                )
            elif "_keep_apart" in request.POST:
                possible_duplicate_keep_apart(pair=pair, user=request.user, note=note)
                self.message_user(
                    request,
                    f"Possible duplicate #{pair.pk}: kept apart; this pair will not be proposed again.",
                    messages.SUCCESS,
                )
            else:
                self.message_user(request, "Choose “Merge” or “Keep apart”.", messages.ERROR)
        except DuplicateError as error:
            self.message_user(request, f"Not decided: {error}", messages.ERROR)
        except Exception:  # staff get a message, never a 500; the service's savepoint rolled its work back
            logger.exception("possible duplicate decision failed", extra={"possible_duplicate": pair.pk})
            self.message_user(
                request, f"Possible duplicate #{pair.pk}: not decided (an error, logged).", messages.ERROR
            )

    # --- bulk actions ----------------------------------------------------------------------------------------

    @admin.action(description="Merge each pair into its older lead", permissions=["change"])
    def merge_into_older(self, request, queryset):
        def merge(pair):
            possible_duplicate_merge(pair=pair, survivor_id=sides(pair)[0].pk, user=request.user)

        self._each(request, queryset, merge, "Merged {} pair(s) into their older lead.")

    @admin.action(description="Keep the selected pairs apart", permissions=["change"])
    def keep_apart_selected(self, request, queryset):
        def keep_apart(pair):
            possible_duplicate_keep_apart(pair=pair, user=request.user)

        self._each(request, queryset, keep_apart, "Kept {} pair(s) apart.")

    def _each(self, request, queryset, decide, done_text: str) -> None:
        """Decide pair by pair, each read again first (an earlier merge may have moved or closed it)."""
        done, skipped = 0, []
        for pk in list(queryset.order_by("pk").values_list("pk", flat=True)):
            pair = PossibleDuplicate.objects.select_related("lead_a", "lead_b").get(pk=pk)
            try:
                decide(pair)
            except DuplicateError as error:
                skipped.append(str(error) if f"#{pk}" in str(error) else f"#{pk}: {error}")
            except Exception:
                logger.exception("possible duplicate decision failed", extra={"possible_duplicate": pk})
                skipped.append(f"#{pk}: an error (logged)")
            else:
                done += 1
        text = done_text.format(done)
        if skipped:
            shown = "; ".join(skipped[:SKIPPED_SHOWN]) + ("; …" if len(skipped) > SKIPPED_SHOWN else "")
            text += f" Skipped {len(skipped)}: {shown}."
        level = messages.SUCCESS if not skipped else messages.WARNING
        self.message_user(request, text, level)
