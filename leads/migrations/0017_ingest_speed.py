"""Ingest speed (issue 14): the portal search's trigram GIN index takes an upload's new entries in one bulk pass.

Inserting a lead adds ~60 entries to `leads_portal_search_trgm_idx` (broker, status and the trigrams of name,
address, city and APN). With GIN's `fastupdate` (on by default) they go to the index's pending list, which the
inserting backend merges into the tree each time it passes `gin_pending_list_limit` (4 MB by default): a 1M-row
upload did that hundreds of times, each a sort and a walk of the tree. The ingestion now raises the limit for its
own transaction (`SET LOCAL gin_pending_list_limit`, pipeline/ingest/sql/__init__.py) and, after its insert and
merges, calls `leads_search_index_flush()`: one merge of the whole list, sorted, before the upload is `done` (so
the search reads the tree, not a long list).

`gin_clean_pending_list()` needs the index's owner, so the function is SECURITY DEFINER: it takes no argument,
touches that one index, returns the pages it emptied, and only `pipeline_writer` and `service_role` may call it.
`maintenance_work_mem` (the merge's memory) is set on the function, for its call only.
"""

from django.db import migrations

FORWARD = """
-- The one merge of the portal search index's pending list (see the module docstring). Returns the pages emptied.
CREATE OR REPLACE FUNCTION leads_search_index_flush() RETURNS bigint
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp SET maintenance_work_mem = '256MB' AS $$
  SELECT gin_clean_pending_list('leads_portal_search_trgm_idx'::regclass)
$$;
REVOKE ALL ON FUNCTION leads_search_index_flush() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION leads_search_index_flush() TO pipeline_writer, service_role;
"""

BACKWARD = """
DROP FUNCTION IF EXISTS leads_search_index_flush();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("leads", "0015_suppressions"),
    ]

    # Reversible: the function is new and nothing else depends on it.
    operations = [migrations.RunSQL(FORWARD, reverse_sql=BACKWARD)]
