"""`manage.py support_contacts`: who to call, from SUPPORT_CONTACTS (docs/runbooks/contacts.md)."""

from django.core.management.base import BaseCommand, CommandError

from equity_connect.support import SupportContactsInvalid, on_call_contact, support_contacts


class Command(BaseCommand):
    help = "Print the support contacts (SUPPORT_CONTACTS: role=address pairs) and which one is on call."

    def handle(self, *args, **options):
        try:
            contacts = support_contacts()
        except SupportContactsInvalid as error:
            raise CommandError(str(error)) from None
        if not contacts:
            self.stdout.write("No support contacts: set SUPPORT_CONTACTS (role=address pairs, comma-separated).")
            return
        on_call = on_call_contact()
        width = max(len(contact.role) for contact in contacts)
        for contact in contacts:
            mark = "  (on call: alert mails name this one)" if contact == on_call else ""
            self.stdout.write(f"{contact.role:<{width}}  {contact.address}{mark}")
