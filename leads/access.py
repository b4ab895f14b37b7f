"""Who saw what: the one writer of `lead_access_records` (its model: leads/models.py `LeadAccessRecord`).

`access_record` writes in the caller's database context, in one INSERT whatever the number of leads: a broker's
context may only write records naming that broker and their user (row-level security), staff write as
`service_role`. The table is append-only (a trigger, migration 0009). A test fails if any other module writes it.

What is recorded:
- a broker opening a lead in the portal (`view`), and the portal's CSV export (`export`: the filters, the row
  count, no lead);
- staff opening a lead in the admin (`view`), changing or deleting it (`change`, with the fields), exporting
  leads or DLQ rows (`export`), and revealing masked personal data (`reveal`, with the reason they gave).
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterable

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection

from security.client_ip import client_ip

from .models import AccessAction

USER_AGENT_MAX = 512
REASON_MAX = 2000

# One row per lead id (a NULL lead for an export): unnest turns the array into the rows, in one statement.
_INSERT = """
INSERT INTO lead_access_records
  (user_id, username, broker_id, action, via, lead_id, filters, row_count, reason, detail, ip_address, user_agent)
SELECT %(user_id)s, %(username)s, %(broker_id)s, %(action)s, %(via)s, lead_id, %(filters)s::jsonb, %(row_count)s,
       %(reason)s, %(detail)s::jsonb, %(ip_address)s::inet, %(user_agent)s
  FROM unnest(%(lead_ids)s::uuid[]) AS lead_id
"""


@dataclasses.dataclass(frozen=True)
class Actor:
    """Who acted when there is no request: an operator running a management command (`manage.py privacy`)."""

    user_id: int  # 0 when the operator named no Django user
    username: str


class _Encoder(DjangoJSONEncoder):
    def default(self, o):
        try:
            return super().default(o)
        except TypeError:
            return str(o)


def _json(value) -> str:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    return json.dumps(value or {}, cls=_Encoder, sort_keys=True)


def access_record(
    *,
    request=None,
    actor: Actor | None = None,
    action: str,
    via: str,
    lead_ids: Iterable | None = None,
    filters=None,
    row_count: int | None = None,
    reason: str = "",
    detail: dict | None = None,
) -> int:
    """Record that the request's user did `action` through `via` on each of `lead_ids` (None: one record about no
    lead, e.g. an export). `filters` is a dict or a dataclass of what an export was filtered by. Returns how many
    records were written. Without a request, `actor` says who (no address, no browser)."""
    if action not in AccessAction.values:
        raise ValueError(f"unknown access action {action!r}")
    ids = [None] if lead_ids is None else [str(uuid.UUID(str(lead_id))) for lead_id in lead_ids]
    if not ids:
        return 0
    if request is None and actor is None:
        raise ValueError("an access record needs the request or the actor")
    if request is not None:
        user = request.user
        user_id, username = user.pk, user.get_username()
        broker_id = getattr(request, "broker_id", None)
        ip_address, user_agent = client_ip(request), request.META.get("HTTP_USER_AGENT") or ""
    else:
        user_id, username, broker_id, ip_address, user_agent = actor.user_id, actor.username, None, None, ""
    with connection.cursor() as cursor:
        cursor.execute(
            _INSERT,
            {
                "user_id": user_id,
                "username": username[:254],
                "broker_id": str(broker_id) if broker_id else None,
                "action": action,
                "via": via[:64],
                "lead_ids": ids,
                "filters": _json(filters),
                "row_count": row_count,
                "reason": (reason or "")[:REASON_MAX],
                "detail": _json(detail),
                "ip_address": ip_address,
                "user_agent": user_agent[:USER_AGENT_MAX],
            },
        )
    return len(ids)
