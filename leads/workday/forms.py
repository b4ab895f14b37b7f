"""The portal's forms for follow-ups, saved views and bulk actions."""

from __future__ import annotations

from django import forms

from .services import NOTE_MAX

BULK_ACTIONS = [
    ("queue", "Queue for campaign"),
    ("do_not_contact", "Mark do-not-contact"),
    ("consent_links", "E-mail consent links"),
    ("follow_up", "Add a follow-up"),
    ("export", "Export CSV"),
]


class FollowUpForm(forms.Form):
    due_date = forms.DateField(label="Due on", widget=forms.DateInput(attrs={"type": "date"}))
    note = forms.CharField(required=False, max_length=NOTE_MAX, label="Note", widget=forms.Textarea(attrs={"rows": 2}))


class SavedViewForm(forms.Form):
    name = forms.CharField(max_length=80, label="Name this view")
    query = forms.CharField(required=False, max_length=4000, widget=forms.HiddenInput)
    make_default = forms.BooleanField(required=False, label="Open it when I go to My leads")


class BulkActionForm(forms.Form):
    action = forms.ChoiceField(choices=BULK_ACTIONS)
    # "selected": the ids posted; "matching": every lead matching the list query `query`.
    scope = forms.ChoiceField(choices=[("selected", "selected"), ("matching", "matching")], required=False)
    query = forms.CharField(required=False, max_length=4000)
    reason = forms.CharField(required=False, max_length=1000)
    due_date = forms.DateField(required=False)
    note = forms.CharField(required=False, max_length=NOTE_MAX)

    def clean(self):
        data = super().clean()
        action = data.get("action")
        if action == "do_not_contact" and not (data.get("reason") or "").strip():
            self.add_error("reason", "Say why these leads must not be contacted.")
        if action == "follow_up" and not data.get("due_date"):
            self.add_error("due_date", "Give the follow-up's due date.")
        return data
