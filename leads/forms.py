"""Forms of the broker portal, the consent page and the login page."""

from __future__ import annotations

from django import forms
from django.contrib.auth.forms import AuthenticationForm

from equity_connect.auth import login_name

from .consent.texts import CHANNELS, CONSENT_TEXTS
from .contact_edit import MAILING_FIELDS
from .models import CampaignStatus
from .preferences import LIST_COLUMNS
from .selectors import DEFAULT_SORT, PAGE_SIZE, PAGE_SIZES, SORT_LABELS, LeadFilters
from .services import Outcome

YES_NO = [("", "Any"), ("yes", "Yes"), ("no", "No")]


def _yes_no(value: str | None) -> bool | None:
    return {"yes": True, "no": False}.get(value or "")


class LeadFilterForm(forms.Form):
    """The lead list's query string. Invalid values are ignored rather than failing the page."""

    q = forms.CharField(
        required=False,
        max_length=200,
        label="Search",
        widget=forms.TextInput(attrs={"placeholder": "Name, address, phone, email or APN", "type": "search"}),
    )
    status = forms.MultipleChoiceField(
        required=False,
        choices=CampaignStatus.choices,
        label="Campaign status",
        widget=forms.CheckboxSelectMultiple(attrs={"class": "chip-input"}),
    )
    email_verified = forms.ChoiceField(required=False, choices=YES_NO, label="Email verified")
    phone_verified = forms.ChoiceField(required=False, choices=YES_NO, label="Phone verified")
    consent = forms.ChoiceField(required=False, choices=YES_NO, label="Consent")
    score_min = forms.IntegerField(required=False, min_value=0, max_value=100, label="Score from")
    score_max = forms.IntegerField(required=False, min_value=0, max_value=100, label="Score to")
    created_from = forms.DateField(
        required=False, label="Created from", widget=forms.DateInput(attrs={"type": "date"})
    )
    created_to = forms.DateField(required=False, label="Created to", widget=forms.DateInput(attrs={"type": "date"}))
    sort = forms.ChoiceField(required=False, choices=list(SORT_LABELS.items()), label="Sort")
    per_page = forms.TypedChoiceField(
        required=False, choices=[(size, size) for size in PAGE_SIZES], coerce=int, label="Per page", empty_value=None
    )

    def page_size(self) -> int:
        """The page size asked for, or the default (an invalid one is ignored like every other filter)."""
        self.is_valid()
        return getattr(self, "cleaned_data", {}).get("per_page") or PAGE_SIZE

    def filters(self) -> LeadFilters:
        self.is_valid()
        data = getattr(self, "cleaned_data", {})
        return LeadFilters(
            campaign_status=tuple(data.get("status") or ()),
            email_verified=_yes_no(data.get("email_verified")),
            phone_verified=_yes_no(data.get("phone_verified")),
            consent=_yes_no(data.get("consent")),
            score_min=data.get("score_min"),
            score_max=data.get("score_max"),
            created_from=data.get("created_from"),
            created_to=data.get("created_to"),
            search=data.get("q") or "",
            sort=data.get("sort") or DEFAULT_SORT,
        )


class DoNotContactForm(forms.Form):
    reason = forms.CharField(max_length=1000, widget=forms.Textarea(attrs={"rows": 2}), label="Reason (required)")

    def clean_reason(self):
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError("Say why the lead must not be contacted.")
        return reason


class OutcomeForm(forms.Form):
    outcome = forms.ChoiceField(choices=Outcome.choices)
    appointment_at = forms.DateTimeField(
        required=False,
        label="Appointment (date and time)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"],
    )
    note = forms.CharField(required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))

    def clean(self):
        data = super().clean()
        if data.get("outcome") == Outcome.APPOINTMENT and not data.get("appointment_at"):
            self.add_error("appointment_at", "Give the appointment's date and time.")
        return data


class ContactEditForm(forms.Form):
    """The lead's contact details as a broker types them (leads/contact_edit.py cleans and checks each value)."""

    email = forms.CharField(required=False, max_length=254, label="E-mail", widget=forms.EmailInput())
    phone = forms.CharField(
        required=False, max_length=40, label="Phone", widget=forms.TextInput(attrs={"type": "tel"})
    )
    mailing_address = forms.CharField(required=False, max_length=200, label="Mailing address")
    mailing_city = forms.CharField(required=False, max_length=200, label="Mailing city")
    mailing_state = forms.CharField(required=False, max_length=2, label="Mailing state (2 letters)")
    mailing_zip = forms.CharField(required=False, max_length=10, label="Mailing ZIP")

    @classmethod
    def for_lead(cls, lead):
        return cls(
            initial={
                "email": lead.email or "",
                "phone": lead.phone or "",
                **{name: getattr(lead, name) or "" for name in MAILING_FIELDS},
            }
        )


class PortalSettingsForm(forms.Form):
    notify_by_email = forms.BooleanField(
        required=False, label="E-mail me when a lead replies, books an appointment or gives consent"
    )


class ListColumnsForm(forms.Form):
    columns = forms.MultipleChoiceField(
        required=False, choices=list(LIST_COLUMNS.items()), widget=forms.CheckboxSelectMultiple, label="Columns"
    )


class ConsentForm(forms.Form):
    """The lead's answer: the ways we may contact them (none ticked to start with: consent is given, never
    assumed), the two buttons submit `choice`, and the page posts the version of the text it showed."""

    choice = forms.ChoiceField(choices=[("consent", "Yes, contact me"), ("refuse", "Do not contact me")])
    channels = forms.MultipleChoiceField(
        choices=list(CHANNELS.items()),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="You may contact me by",
    )
    text_version = forms.ChoiceField(
        choices=[(version, version) for version in CONSENT_TEXTS], widget=forms.HiddenInput
    )

    def clean(self):
        data = super().clean()
        if data.get("choice") == "consent" and not data.get("channels"):
            self.add_error("channels", "Tick at least one way we may contact you, or choose “No”.")
        return data


class EmailAuthenticationForm(AuthenticationForm):
    """Django's login form with the username field presented as the email address (EmailBackend), in the one
    form every part of the login compares (`login_name`: case, spaces)."""

    username = forms.CharField(
        label="Email", max_length=254, widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"})
    )

    def clean_username(self):
        return login_name(self.cleaned_data["username"])
