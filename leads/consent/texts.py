"""The words a lead agrees to, by version. A consent record stores the version and the exact text shown.

A version is never edited once it has been shown to a lead: add a new one and make it CURRENT_VERSION.
The form posts the version it showed, so an answer to a page loaded before a change is recorded with the
words that page showed.
"""

from __future__ import annotations

CHANNELS = {
    "email": "E-mail",
    "sms": "Text messages (SMS)",
    "phone": "Phone calls",
}

CONSENT_TEXTS = {
    "2025-01": (
        "By choosing “Yes”, you agree that {officer} may contact you about your home's equity options in the "
        "ways you ticked above. You can stop at any time: "
        "use the unsubscribe link in any e-mail, reply STOP to a text message, or tell us on the phone."
    ),
}
CURRENT_VERSION = "2025-01"


def consent_text(*, version: str, broker_name: str | None) -> str:
    """The exact text of `version` as a lead sees it. KeyError for an unknown version."""
    officer = "a licensed loan officer working with Equity Connect"
    if broker_name:
        officer = f"{broker_name}, {officer},"
    return CONSENT_TEXTS[version].format(officer=officer)
