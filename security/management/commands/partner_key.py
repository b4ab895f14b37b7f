"""`manage.py partner_key create <partner> [--broker <id>] [--secret <value>] [--label <text>]`
(prints `key_id=…` and `secret=…` once), `partner_key list [--partner <name>]`,
`partner_key revoke <key_id>`, `partner_key reencrypt` (after an ENCRYPTION_KEY rotation)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from equity_connect.db import service_context
from security.models import Broker, PartnerKey
from security.services import (
    PartnerKeyError,
    partner_get_or_create,
    partner_key_create,
    partner_key_revoke,
    partner_keys_reencrypt,
)


class Command(BaseCommand):
    help = "Create, list, revoke and re-encrypt partner signing keys."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="create a key for a partner (created if new); prints the secret once")
        create.add_argument("partner", help="partner name")
        create.add_argument("--broker", help="default broker id (UUID) or email")
        create.add_argument("--secret", help="use this secret (at least 32 characters) instead of a random one")
        create.add_argument("--label", default="", help="a note, e.g. 'rotation 2026-11'")
        listing = sub.add_parser("list", help="list keys (never secrets)")
        listing.add_argument("--partner", help="only this partner's keys")
        revoke = sub.add_parser("revoke", help="revoke a key: it stops verifying at once")
        revoke.add_argument("key_id")
        sub.add_parser("reencrypt", help="re-encrypt every secret with the first ENCRYPTION_KEY")

    def handle(self, *args, action, **options):
        with service_context():
            try:
                getattr(self, f"_{action}")(**options)
            except PartnerKeyError as error:
                raise CommandError(str(error)) from error

    def _create(self, *, partner, broker=None, secret=None, label="", **_):
        default_broker = None
        if broker:
            lookup = {"email": broker} if "@" in broker else {"pk": broker}
            try:
                default_broker = Broker.objects.get(**lookup)
            except (Broker.DoesNotExist, ValueError) as error:
                raise CommandError(f"no broker {broker!r}") from error
            except Exception as error:  # an invalid UUID
                raise CommandError(f"no broker {broker!r}") from error
        key, plain = partner_key_create(
            partner=partner_get_or_create(name=partner), default_broker=default_broker, secret=secret, label=label
        )
        self.stdout.write(f"key_id={key.key_id}")
        self.stdout.write(f"secret={plain}")
        self.stderr.write("Store the secret now: it is shown only this once.")

    def _list(self, *, partner=None, **_):
        keys = PartnerKey.objects.select_related("partner", "default_broker")
        if partner:
            keys = keys.filter(partner__name=partner)
        for key in keys:
            broker = key.default_broker.email if key.default_broker else "-"
            used = key.last_used_at.isoformat() if key.last_used_at else "never"
            self.stdout.write(
                f"{key.key_id}\t{key.partner.name}\t{key.status}\tbroker={broker}"
                f"\tcreated={key.created_at.isoformat()}\tlast_used={used}\t{key.label}"
            )

    def _revoke(self, *, key_id, **_):
        key = PartnerKey.objects.select_related("partner").filter(key_id=key_id).first()
        if key is None:
            raise CommandError(f"no key {key_id!r}")
        partner_key_revoke(key=key)
        self.stdout.write(f"revoked {key_id}")

    def _reencrypt(self, **_):
        self.stdout.write(f"re-encrypted {partner_keys_reencrypt()} secrets")
