"""The portal search rows of an upload's new leads (leads migration 0026_lead_search).

A large upload's new leads get their `lead_search` rows as one new partition, whose trigram GIN is built by
`CREATE INDEX` over those rows alone (about half the cost of inserting the same entries one by one into a
standing GIN: docs/benchmarks.md, "Ingest speed", point 6). For that the insert runs with
`equity.lead_search_deferred` on (the row trigger on `leads` then skips), and `lead_search_partition_add()`
(SECURITY DEFINER: the partition is the table owner's) writes the rows, builds the indexes, attaches the
partition and ends the deferral, in the upload's transaction: a lead is searchable exactly when its upload is
`done`. An upload creating fewer than INGEST_SEARCH_PARTITION_MIN_LEADS leads (or a DLQ row) leaves the insert
to the trigger, which writes the live partition.
Merges and owner changes need nothing here: the update trigger rewrites the row of any lead whose names,
street, city, APN or broker change, whoever changes them.
"""

from __future__ import annotations

DEFER = "SELECT set_config('equity.lead_search_deferred', 'on', true)"

# The new leads are the resolved properties that matched none (the rows the insert just wrote, same values); none
# when the insert was not deferred (the function then only returns 0).
PARTITION_ADD = """SELECT lead_search_partition_add(
  coalesce(array_agg(r.new_id), '{}'), coalesce(array_agg(r.assigned_broker_id), '{}'),
  coalesce(array_agg(lead_search_document(r.first_name, r.last_name, r.property_address, r.property_city, r.apn)),
           '{}'))
  FROM ingest_resolved r
 WHERE r.target IS NULL AND current_setting('equity.lead_search_deferred', true) = 'on'"""
