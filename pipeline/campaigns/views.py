"""`POST /api/v1/webhooks/instantly`: a thin caller of pipeline/campaigns/webhooks.py.

Anonymous to Django (Instantly has no session), so no database context is open here: the service opens
`service_context()` after it has checked the secret header. No CSRF token: the secret is the credential.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from .webhooks import (
    WebhookBadRequest,
    WebhookUnauthorized,
    instantly_webhook_receive,
    webhook_length_check,
    webhook_secret_check,
)

logger = logging.getLogger(__name__)


@csrf_exempt
@require_POST
def instantly_webhook(request):
    secret = request.headers.get(settings.INSTANTLY_WEBHOOK_HEADER)
    try:
        webhook_secret_check(secret)  # before the body is read: a stranger's body is never read
        webhook_length_check(request.META.get("CONTENT_LENGTH"))
        outcome = instantly_webhook_receive(secret=secret, body=request.body)
    except WebhookUnauthorized:
        return JsonResponse({"error": "unauthorized"}, status=401)
    except WebhookBadRequest as exc:
        return JsonResponse({"error": str(exc)}, status=exc.status)
    except Exception:
        # Unexpected (e.g. the database is down): the delivery was rolled back, not marked as seen, so a
        # 500 lets Instantly deliver it again. Known-bad input never gets here (DLQ + 2xx in the service).
        logger.exception("instantly webhook: delivery could not be applied")
        return JsonResponse({"status": "error"}, status=500)
    logger.info(
        "instantly webhook %s: %s",
        outcome.event_type,
        outcome.status,
        extra={"event_type": outcome.event_type, "outcome": outcome.status},
    )
    return JsonResponse(outcome.as_json(), status=200)
