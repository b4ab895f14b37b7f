"""The lead list's sortable columns: `portal_lead_search()` (the search path of the list, migration 0014) learns
the two reversed orders a column header gives, `name_desc` and `status_desc`, the same orders as
leads.selectors.SORTS (a test checks that the search pages follow the plain list's order for every sort).

RunSQL because it is a SQL function; the reverse puts back 0014's function (the new sorts then fall back to
`newest` there, as any unknown sort does)."""

import importlib

from django.db import migrations

_0014 = importlib.import_module("leads.migrations.0014_pii_encryption")
OLD_SORT = "    WHEN 'status' THEN 'campaign_status, created_at DESC, id DESC'\n"
NEW_SORTS = (
    OLD_SORT
    + "    WHEN 'name_desc' THEN 'last_name DESC, first_name DESC, id DESC'\n"
    + "    WHEN 'status_desc' THEN 'campaign_status DESC, created_at DESC, id DESC'\n"
)
assert OLD_SORT in _0014.SEARCH_FUNCTION
SEARCH_FUNCTION = _0014.SEARCH_FUNCTION.replace(OLD_SORT, NEW_SORTS)


class Migration(migrations.Migration):
    dependencies = [
        ("leads", "0015_suppressions"),
    ]

    operations = [
        migrations.RunSQL(SEARCH_FUNCTION, reverse_sql=_0014.SEARCH_FUNCTION),
    ]
