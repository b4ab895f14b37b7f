"""The public pages of the consent e-mail: `GET /consent?token=…` shows the form, `POST` records the answer;
`GET /unsubscribe?token=…` asks to confirm, `POST` unsubscribes.

They run with no request context (anonymous): the services check the token's signature first and only
then open a narrow service context for that token's rows.

No CSRF cookie check here, on purpose: the signed token in the URL is the credential, and a forged
cross-site POST would need that token, with which the POST could be sent directly anyway. A CSRF check
would only turn away leads whose browsers refuse cookies (and, for the unsubscribe, the one-click POST
mail clients send without any cookie).

Only the lead answers for the lead: a session logged in as anyone (a broker, staff) is refused and nothing
is recorded, so a broker holding a link cannot give the consent themselves.
"""

from __future__ import annotations

from functools import wraps

from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from security.client_ip import client_ip
from security.headers import no_store

from ..consent.services import (
    UTM_FIELDS,
    ConsentAnswerInvalid,
    ConsentLinkError,
    ConsentRequest,
    consent_lead_for_token,
    consent_record,
)
from ..consent.texts import CHANNELS, CURRENT_VERSION, consent_text
from ..consent.unsubscribe import email_unsubscribe, unsubscribe_token_check
from ..forms import ConsentForm

PROBLEM_STATUS = {"invalid": 400, "expired": 410, "used": 409}


def _problem(request, reason: str, template: str = "consent/problem.html"):
    return render(request, template, {"reason": reason}, status=PROBLEM_STATUS.get(reason, 400))


def _form_page(request, token: str, form: ConsentForm, status: int):
    try:
        lead = consent_lead_for_token(token=token)
    except ConsentLinkError as error:
        return _problem(request, error.reason)
    broker_name = lead.assigned_broker.name if lead.assigned_broker else None
    context = {
        "lead": lead,
        "form": form,
        "channels": [(value, label, value in (form["channels"].value() or [])) for value, label in CHANNELS.items()],
        "text_version": CURRENT_VERSION,
        "consent_text": consent_text(version=CURRENT_VERSION, broker_name=broker_name),
    }
    return render(request, "consent/form.html", context, status=status)


def _private(view):
    """The page is about one lead and its URL carries the token: never cached, and no Referer leaves it."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        response = no_store(view(request, *args, **kwargs))
        response["Referrer-Policy"] = "no-referrer"
        return response

    return wrapper


@csrf_exempt  # see the module docstring
@_private
@require_http_methods(["GET", "POST"])
def consent_page(request):
    if request.user.is_authenticated:
        return render(request, "consent/signed_in.html", status=403)
    token = request.GET.get("token", "")
    if request.method == "GET":
        return _form_page(request, token, ConsentForm(), status=200)
    form = ConsentForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        source = ConsentRequest(
            ip_address=client_ip(request),
            user_agent=request.META.get("HTTP_USER_AGENT", ""),
            utm={name: request.GET.get(name, "") for name in UTM_FIELDS},
        )
        consent = data["choice"] == "consent"
        try:
            lead = consent_record(
                token=token,
                consent=consent,
                channels=data["channels"],
                text_version=data["text_version"],
                request=source,
            )
        except ConsentLinkError as error:
            return _problem(request, error.reason)
        except ConsentAnswerInvalid as error:
            form.add_error(None, str(error))
        else:
            chosen = [label for value, label in CHANNELS.items() if value in data["channels"]]
            return render(request, "consent/thanks.html", {"lead": lead, "consent": consent, "channels": chosen})
    return _form_page(request, token, form, status=400)


@csrf_exempt  # see the module docstring
@_private
@require_http_methods(["GET", "POST"])
def unsubscribe_page(request):
    token = request.GET.get("token", "")
    try:
        if request.method == "GET":
            unsubscribe_token_check(token=token)
            return render(request, "consent/unsubscribe.html", {"token": token})
        email_unsubscribe(token=token)
    except ConsentLinkError as error:
        return _problem(request, error.reason, template="consent/unsubscribe_problem.html")
    return render(request, "consent/unsubscribed.html")
