"""`POST /api/v1/webhooks/twilio`: a thin caller of pipeline/sms/webhooks.py.

Anonymous to Django (Twilio has no session): the service opens `service_context()` once the signature holds.
No CSRF token: the signature is the credential. Answers an empty TwiML `<Response/>` (no automatic reply: Twilio
itself answers the opt-out words).
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.exceptions import BadRequest, RequestDataTooBig, SuspiciousOperation
from django.http import HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from .webhooks import (
    TwilioBadRequest,
    TwilioForbidden,
    twilio_length_check,
    twilio_webhook_receive,
)

logger = logging.getLogger(__name__)
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def public_url(request) -> str:
    """The URL Twilio signed: TWILIO_WEBHOOK_BASE_URL + path + query (the URL behind a TLS proxy differs)."""
    base = settings.TWILIO_WEBHOOK_BASE_URL.rstrip("/")
    return base + request.get_full_path() if base else request.build_absolute_uri()


@csrf_exempt
@require_POST
def twilio_webhook(request):
    try:
        twilio_length_check(request.META.get("CONTENT_LENGTH"))
        params = [(name, value) for name, values in request.POST.lists() for value in values]
        outcome = twilio_webhook_receive(
            url=public_url(request), params=params, signature=request.headers.get("X-Twilio-Signature")
        )
    except TwilioForbidden:
        return JsonResponse({"error": "forbidden"}, status=403)
    except TwilioBadRequest as exc:
        return JsonResponse({"error": str(exc)}, status=exc.status)
    except RequestDataTooBig:
        return JsonResponse({"error": "too large"}, status=413)
    except (SuspiciousOperation, BadRequest, MultiPartParserError, UnicodeDecodeError, ValueError):
        return JsonResponse({"error": "the body is not a form Twilio sends"}, status=400)
    except Exception:
        # Our fault (e.g. the database is down): rolled back and not recorded, so Twilio's retry is what we want.
        logger.exception("twilio webhook: the request could not be applied")
        return JsonResponse({"status": "error"}, status=500)
    logger.info("twilio webhook: %s", outcome.status, extra={"outcome": outcome.status})
    return HttpResponse(EMPTY_TWIML, content_type="text/xml")
