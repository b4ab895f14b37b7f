"""How the portal shows stored values, never how they are stored: phones in national format, ALL-CAPS names
and addresses in title case, money with thousands separators, times in the broker's zone, and the words of a
timeline event. Pure functions (the template filters in leads/templatetags/portal.py call them)."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.timesince import timesince, timeuntil

from security.models import DEFAULT_BROKER_TIME_ZONE

# "Mar 10, 2026, 2:30 PM EDT": the zone's abbreviation says whose clock it is.
TIME_FORMAT = "%b %-d, %Y, %-I:%M %p %Z"


def broker_zone(broker) -> ZoneInfo:
    """The broker's zone (the default for none or a name this machine does not know)."""
    name = getattr(broker, "time_zone", None) or DEFAULT_BROKER_TIME_ZONE
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_BROKER_TIME_ZONE)


def phone_national(value: str | None) -> str:
    """`+14539223220` -> `(453) 922-3220`; a number outside the US and Canada in international format; what
    cannot be parsed as it is."""
    if not value:
        return ""
    try:
        number = phonenumbers.parse(value, "US")
    except phonenumbers.NumberParseException:
        return value
    if number.country_code == 1:
        national = str(number.national_number)
        if len(national) == 10:
            return f"({national[:3]}) {national[3:6]}-{national[6:]}"
        return value
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


# Words that stay as they are in a title-cased address: directions and unit designators are capitals by
# convention, ordinals are lower case after their digits ("1ST" -> "1st"), PO BOX stays capitals.
_UPPER_WORDS = {"NE", "NW", "SE", "SW", "N", "S", "E", "W", "PO", "II", "III", "IV", "APN", "LLC", "US"}
_ORDINAL = re.compile(r"^(\d+)(ST|ND|RD|TH)$")
_WORD = re.compile(r"[A-Za-z0-9]+(?:'[A-Za-z]+)?")


def _title_word(match: re.Match) -> str:
    word = match.group(0)
    ordinal = _ORDINAL.match(word)
    if ordinal:
        return ordinal.group(1) + ordinal.group(2).lower()
    if word in _UPPER_WORDS:
        return word
    if word.startswith("MC") and len(word) > 2:
        return "Mc" + word[2:].capitalize()
    if "'" in word:  # O'BRIEN -> O'Brien
        head, tail = word.split("'", 1)
        return head.capitalize() + "'" + tail.capitalize()
    return word.capitalize()


def title_if_shouting(value: str | None) -> str:
    """A name or address typed ALL CAPS in title case (`123 MAIN ST NE` -> `123 Main St NE`); text with any
    lower-case letter is left as the source wrote it (`McDonald`, `de la Cruz`)."""
    if not value:
        return value or ""
    if any(character.islower() for character in value) or not any(character.isupper() for character in value):
        return value
    return _WORD.sub(_title_word, value)


def money(value) -> str:
    """`350000` -> `$350,000` (whole dollars); empty for none."""
    if value is None or value == "":
        return ""
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return str(value)
    sign = "-" if amount < 0 else ""
    return f"{sign}${abs(amount):,.0f}"


def absolute_time(value, zone: ZoneInfo) -> str:
    """An aware datetime (or an ISO 8601 string) in `zone`, e.g. `Mar 10, 2026, 2:30 PM EDT`."""
    moment = _moment(value)
    if moment is None:
        return ""
    return moment.astimezone(zone).strftime(TIME_FORMAT)


def relative_time(value, now: datetime | None = None) -> str:
    """`3 hours ago`, `in 2 days` (the largest unit only); `just now` within a minute."""
    moment = _moment(value)
    if moment is None:
        return ""
    now = now or timezone.now()
    if abs((now - moment).total_seconds()) < 60:
        return "just now"
    if moment <= now:
        return f"{timesince(moment, now, depth=1)} ago"
    return f"in {timeuntil(moment, now, depth=1)}"


def _moment(value) -> datetime | None:
    if isinstance(value, str):
        try:
            value = parse_datetime(value)
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    return value if timezone.is_aware(value) else timezone.make_aware(value, ZoneInfo("UTC"))


CHANNEL_WORDS = {"email": "e-mail", "sms": "text messages", "phone": "phone calls"}


def _channels(channels) -> str:
    return ", ".join(CHANNEL_WORDS.get(str(channel), str(channel)) for channel in channels or ())


def _reason_words(reason) -> str:
    from .suppressions.rules import SuppressionReason

    try:
        return SuppressionReason(reason).label.lower()
    except ValueError:
        return str(reason).replace("_", " ")


def event_details(event_type: str, data, zone: ZoneInfo) -> list[str]:
    """What a person wants to read of a timeline event, as short phrases: the outcome and its note, the
    appointment's time in the broker's zone, the do-not-contact reason, the reply's subject and snippet, the
    channels consented to or suppressed, a status change. `data` is the event's detail with its notes opened
    (security/fields.py `open_notes`); a detail of another shape (a JSON string, a list) gives no phrases."""
    from .services import Outcome

    if not isinstance(data, dict):
        return []
    phrases: list[str] = []
    outcome = data.get("outcome")
    if outcome and event_type != "appointment_booked":
        phrases.append(Outcome(outcome).label if outcome in Outcome.values else str(outcome))
    if data.get("appointment_at"):
        phrases.append(f"for {absolute_time(data['appointment_at'], zone)}")
    if data.get("reply_subject"):
        phrases.append(f"subject “{data['reply_subject']}”")
    if data.get("reply_snippet"):
        phrases.append(f"“{data['reply_snippet']}”")
    if data.get("channels") and event_type in ("consent_given", "lead_verified"):
        phrases.append(f"for {_channels(data['channels'])}")
    if isinstance(data.get("suppressed_channels"), dict):
        marks = data["suppressed_channels"]
        phrases.append(
            "never by "
            + "; ".join(
                f"{CHANNEL_WORDS.get(channel, channel)} ({', '.join(_reason_words(r) for r in reasons or ())})"
                for channel, reasons in marks.items()
            )
            if marks
            else "no channel suppressed any more"
        )
    status = data.get("campaign_status")
    if isinstance(status, dict) and status.get("to"):
        phrases.append(
            f"status {str(status.get('from') or 'none').replace('_', ' ')} → {status['to'].replace('_', ' ')}"
        )
    if data.get("due_date"):
        phrases.append(f"due {data['due_date']}")
    if event_type == "lead_reassigned" and data.get("to_broker_name"):
        phrases.append(f"from {data.get('from_broker_name') or 'another broker'} to {data['to_broker_name']}")
    if data.get("reason"):
        phrases.append(str(data["reason"]))
    if data.get("note"):
        phrases.append(str(data["note"]))
    if data.get("waits_until_local"):
        phrases.append(f"to be e-mailed when the lead's contact window opens ({data['waits_until_local']})")
    return phrases
