"""`migrate`, run as the schema owner (DATABASE_ADMIN_URL) rather than the application's login role.

The application role cannot create or alter tables (so it cannot switch off row-level security); the
admin role can. Everything else is Django's own `migrate`.
"""

from django.core.management.commands.migrate import Command as DjangoMigrate

from equity_connect.db import admin_connection


class Command(DjangoMigrate):
    help = DjangoMigrate.help + " Runs as DATABASE_ADMIN_URL's role."

    def handle(self, *args, **options):
        with admin_connection(options["database"]):
            return super().handle(*args, **options)
