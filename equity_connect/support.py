"""Who to call: `SUPPORT_CONTACTS`, `role=address` pairs (comma-separated), shown on the admin index, printed by
`manage.py support_contacts` (docs/runbooks/contacts.md) and at the end of every alert mail (the on-call one)."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

ON_CALL_ROLES = ("on-call", "oncall", "on_call")


@dataclass(frozen=True)
class SupportContact:
    role: str
    address: str

    def __str__(self) -> str:
        return f"{self.role}: {self.address}"


class SupportContactsInvalid(ValueError):
    """An entry of SUPPORT_CONTACTS is not `role=address`."""


def support_contacts() -> list[SupportContact]:
    """The configured contacts, in the order given. Raises SupportContactsInvalid on a malformed entry."""
    contacts = []
    for entry in getattr(settings, "SUPPORT_CONTACTS", []) or []:
        role, sep, address = entry.partition("=")
        if not sep or not role.strip() or not address.strip():
            raise SupportContactsInvalid(f"SUPPORT_CONTACTS: {entry!r} is not `role=address`")
        contacts.append(SupportContact(role=role.strip(), address=address.strip()))
    return contacts


def on_call_contact() -> SupportContact | None:
    """The contact whose role is on-call (any spelling of it), else the first one; None when none is set or the
    setting is malformed (an alert mail must still go out)."""
    try:
        contacts = support_contacts()
    except SupportContactsInvalid:
        return None
    for contact in contacts:
        if contact.role.lower() in ON_CALL_ROLES:
            return contact
    return contacts[0] if contacts else None


def on_call_footer() -> str:
    """The last lines of an alert mail: who is on call (or how to configure it)."""
    contact = on_call_contact()
    if contact is None:
        return "\n-- \nOn call: nobody configured (set SUPPORT_CONTACTS).\n"
    return f"\n-- \nOn call: {contact.role}: {contact.address}\n"
