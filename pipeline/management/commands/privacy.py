"""`manage.py privacy export|erase --email … | --phone …`: a person's right to know and to be forgotten.

    manage.py privacy export --email jane@example.com [--phone …] [--output DIR] [--by USERNAME]
    manage.py privacy erase --email jane@example.com [--phone …] [--by USERNAME] [--yes]

`export` writes one JSON file with every record about the person and a consent-proof file per lead into DIR
(PRIVACY_EXPORT_DIR by default), readable by the owner only. `erase` removes or redacts all of it, at Instantly
too (pipeline/privacy/erase.py); it asks for the e-mail or phone again unless --yes. `--by` names the staff
user the request is carried out for (on the access record); without it the record names the operating-system
user.
"""

from __future__ import annotations

import getpass
import os
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from leads.access import Actor
from pipeline.ingest import normalise
from pipeline.privacy.erase import person_erase
from pipeline.privacy.export import person_export
from pipeline.privacy.person import Person, PrivacyError


class Command(BaseCommand):
    help = "Export or erase every record about one person, found by e-mail address and/or phone number."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=("export", "erase"))
        parser.add_argument("--email", default="")
        parser.add_argument("--phone", default="")
        parser.add_argument("--output", default="", help="export: the directory the files go to")
        parser.add_argument("--by", default="", help="the staff user this is done for (on the access record)")
        parser.add_argument("--yes", action="store_true", help="erase: do not ask for confirmation")

    def handle(self, *args, action, email, phone, output, by, yes, **options):
        try:
            person = Person.of(email=email or None, phone=phone or None)
        except PrivacyError as error:
            raise CommandError(str(error)) from error
        actor = self._actor(by)
        if action == "export":
            self._export(person, actor, Path(output or settings.PRIVACY_EXPORT_DIR))
        else:
            self._erase(person, actor, confirmed=yes)

    def _actor(self, username: str) -> Actor:
        if not username:
            return Actor(user_id=0, username=f"os:{getpass.getuser()}")
        user = get_user_model().objects.filter(username=username, is_staff=True, is_active=True).first()
        if user is None:
            raise CommandError(f"--by {username}: no active staff user by that name")
        return Actor(user_id=user.pk, username=user.get_username())

    def _export(self, person: Person, actor: Actor, directory: Path) -> None:
        export = person_export(person=person, actor=actor)
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        for name, content in export.files().items():
            path = directory / name
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(content)
            self.stdout.write(str(path))
        counts = ", ".join(f"{count} {name.replace('_', ' ')}" for name, count in export.counts.items())
        self.stdout.write(f"exported {counts}")

    def _erase(self, person: Person, actor: Actor, *, confirmed: bool) -> None:
        if not confirmed:
            again = input("Type the e-mail address or phone number again to erase everything about this person: ")
            if not ({normalise.email(again), normalise.phone(again)} & ({person.email, person.phone} - {None})):
                raise CommandError("not confirmed: nothing was erased")
        try:
            result = person_erase(person=person, actor=actor)
        except PrivacyError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(f"erased: {result.summary}")
        if not result.contactable_view_refreshed:
            self.stdout.write("the contactable-leads view was not refreshed: run manage.py refresh_contactable_leads")
