"""The public consent page: `GET /consent?token=…` shows, `POST` records.

It runs with no request context (anonymous): the services check the token's signature first and only
then open a narrow service context for that token's row and lead.

No CSRF cookie check here, on purpose: the signed single-use token in the URL is the credential, and a
forged cross-site POST would need that token, with which the POST could be sent directly anyway. A CSRF
check would only turn away leads whose browsers refuse cookies (and log the still-valid link).
"""

from __future__ import annotations

from functools import wraps

from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from security.headers import no_store

from ..forms import ConsentForm
from ..services import UTM_FIELDS, ConsentLinkError, ConsentRequest, consent_lead_for_token, consent_record

PROBLEM_STATUS = {"invalid": 400, "expired": 410, "used": 409}


def _problem(request, reason: str):
    return render(request, "consent/problem.html", {"reason": reason}, status=PROBLEM_STATUS.get(reason, 400))


def _client_ip(request) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


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
    token = request.GET.get("token", "")
    if request.method == "POST":
        form = ConsentForm(request.POST)
        if not form.is_valid():
            return _problem(request, "invalid")
        source = ConsentRequest(
            ip_address=_client_ip(request),
            user_agent=request.META.get("HTTP_USER_AGENT", ""),
            utm={name: request.GET.get(name, "") for name in UTM_FIELDS},
        )
        consent = form.cleaned_data["choice"] == "consent"
        try:
            lead = consent_record(token=token, consent=consent, request=source)
        except ConsentLinkError as error:
            return _problem(request, error.reason)
        return render(request, "consent/thanks.html", {"lead": lead, "consent": consent})
    try:
        lead = consent_lead_for_token(token=token)
    except ConsentLinkError as error:
        return _problem(request, error.reason)
    return render(request, "consent/form.html", {"lead": lead})
