"""Privileges for the application's login role, re-applied after every `migrate`.

Tables are owned by the admin role (DATABASE_ADMIN_URL), so row-level security always applies to the
application. The application role (DATABASE_URL's user) gets plain table privileges; what it may *see*
of the domain tables is decided by the policies, and it has none of its own: only after
`SET LOCAL ROLE authenticated|service_role|…` (which its membership allows) does a policy match.
The materialized view cannot carry RLS, and `leads_staging` has none (COPY refuses RLS tables), so only
`service_role` and `pipeline_writer` may read them. The login role is also made a member of `privacy_officer`
(leads migration 0013), which may only call the audit tables' redaction and retention functions.
`pipeline_events` and its partitions are append-only for every role but the owner (pipeline 0026): the last
statement takes back the UPDATE, DELETE and TRUNCATE the blanket grants gave.
"""

from __future__ import annotations

from django.conf import settings
from django.db import connections
from psycopg import sql

ROLES = ("anon", "authenticated", "service_role", "pipeline_writer")


def grant_application_privileges(using: str = "default", **kwargs) -> None:
    connection = connections[using]
    app_role = settings.DATABASE_APP_ROLE
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_user, array_agg(rolname), to_regnamespace('auth') IS NOT NULL,"
            " to_regclass('mv_contactable_leads') IS NOT NULL AND to_regclass('leads_staging') IS NOT NULL,"
            " to_regclass('lead_access_records') IS NOT NULL, to_regclass('dnc_registry_load') IS NOT NULL"
            " FROM pg_roles WHERE rolname = ANY(%s)",
            [list(ROLES)],
        )
        current_user, existing, has_auth_schema, has_view, has_access_records, has_dnc_load = cursor.fetchone()
        if not existing or len(existing) < len(ROLES) or not has_auth_schema or not has_view:
            return  # the database-objects migration is not applied (e.g. after `migrate leads zero`)
        statements = [
            "GRANT USAGE ON SCHEMA public, auth TO service_role, pipeline_writer, authenticated, anon",
            "GRANT ALL ON ALL TABLES IN SCHEMA public TO service_role",
            # Consent records are evidence: a trigger refuses UPDATE and DELETE, and TRUNCATE (which fires no
            # row trigger) is not granted at all.
            "REVOKE TRUNCATE ON lead_consent_audit FROM service_role",
            "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO service_role, pipeline_writer, authenticated",
        ]
        if has_access_records:
            # Access records are append-only too (leads migration 0009): staff read and add them, nothing more.
            statements.append("REVOKE UPDATE, DELETE, TRUNCATE ON lead_access_records FROM service_role")
        if app_role and app_role != current_user:
            role = sql.Identifier(app_role)
            statements += [
                sql.SQL("GRANT USAGE ON SCHEMA public, auth TO {}").format(role),
                sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {}").format(role),
                sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {}").format(role),
                sql.SQL("REVOKE ALL ON mv_contactable_leads FROM {}").format(role),
                # staging has no RLS (COPY needs that): only service_role and pipeline_writer may touch it
                sql.SQL("REVOKE ALL ON leads_staging FROM {}").format(role),
                # the DNC import's loading table has no RLS either (COPY): service_role's only
                *([sql.SQL("REVOKE ALL ON dnc_registry_load FROM {}").format(role)] if has_dnc_load else []),
                *(
                    [sql.SQL("REVOKE UPDATE, DELETE, TRUNCATE ON lead_access_records FROM {}").format(role)]
                    if has_access_records
                    else []
                ),
                sql.SQL("GRANT anon, authenticated, service_role, pipeline_writer TO {}").format(role),
            ]
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = 'privacy_officer'")
        if app_role and app_role != current_user and cursor.fetchone():
            # Membership only (the login role is NOINHERIT): privacy_officer_context sets it for erasure and
            # retention; the role itself may only call the audit tables' definer functions (leads 0013).
            statements.append(sql.SQL("GRANT privacy_officer TO {}").format(sql.Identifier(app_role)))
        cursor.execute(
            "SELECT to_regprocedure('pipeline_events_append_only(regclass)') IS NOT NULL"
            " AND has_function_privilege('pipeline_events_append_only(regclass)', 'EXECUTE')"
        )
        if cursor.fetchone()[0]:
            # The event trail is append-only (pipeline 0026): the grants above gave service_role and the login role
            # UPDATE and DELETE (and TRUNCATE) on it and its partitions; the owner's function takes them back.
            statements.append("SELECT pipeline_events_append_only()")
        for statement in statements:
            cursor.execute(statement)
