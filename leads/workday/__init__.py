"""A broker's working day in the portal: follow-up tasks, saved list views (with the built-in "My day"), the
appointment state shown on the list, and bulk actions on many selected leads (bulk.py)."""
