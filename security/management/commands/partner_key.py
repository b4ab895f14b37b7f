"""`manage.py partner_key create <partner> [--broker <id>] [--allow-broker <id> …] [--allow-v1] [--secret <value>]
[--label <text>]` (prints `key_id=…` and `secret=…` once), `partner_key list [--partner <name>]`,
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
        create.add_argument(
            "--allow-broker",
            action="append",
            default=[],
            dest="allow_brokers",
            metavar="BROKER",
            help="a broker (id or email) the key may name in X-Broker-Id besides its default; repeatable",
        )
        create.add_argument(
            "--allow-v1",
            action="store_true",
            help="also accept the v1 signature (body only, replayable) from this key: only for a partner that "
            "cannot sign v2 yet",
        )
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

    def _create(self, *, partner, broker=None, secret=None, label="", allow_brokers=(), allow_v1=False, **_):
        default_broker = self._broker(broker) if broker else None
        key, plain = partner_key_create(
            partner=partner_get_or_create(name=partner),
            default_broker=default_broker,
            secret=secret,
            label=label,
            allow_v1=allow_v1,
            allowed_brokers=[self._broker(value) for value in allow_brokers],
        )
        self.stdout.write(f"key_id={key.key_id}")
        self.stdout.write(f"secret={plain}")
        self.stderr.write("Store the secret now: it is shown only this once.")
        if allow_v1:
            self.stderr.write("This key accepts v1 signatures, which a captured request can replay: move it to v2.")

    @staticmethod
    def _broker(value: str) -> Broker:
        lookup = {"email": value} if "@" in value else {"pk": value}
        try:
            return Broker.objects.get(**lookup)
        except Exception as error:  # no such broker, or not a UUID
            raise CommandError(f"no broker {value!r}") from error

    def _list(self, *, partner=None, **_):
        keys = PartnerKey.objects.select_related("partner", "default_broker").prefetch_related("allowed_brokers")
        if partner:
            keys = keys.filter(partner__name=partner)
        for key in keys:
            broker = key.default_broker.email if key.default_broker else "-"
            used = key.last_used_at.isoformat() if key.last_used_at else "never"
            allowed = ",".join(sorted(b.email for b in key.allowed_brokers.all())) or "-"
            self.stdout.write(
                f"{key.key_id}\t{key.partner.name}\t{key.status}\tbroker={broker}\tallowed_brokers={allowed}"
                f"\tv1={'allowed' if key.allow_v1 else 'refused'}"
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
