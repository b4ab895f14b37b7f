"""CSV for people who open it in a spreadsheet: a cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage
return would run as a formula (CSV injection), so it is prefixed with `'` — unless it is a plain number, which
a spreadsheet reads as a number anyway. Every CSV the product writes for people goes through this: the portal's
export, the admin's exports (django-import-export resources take `SpreadsheetSafeResource`), the DLQ export and
the rejected rows of an upload."""

from __future__ import annotations

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value):
    """The cell as written: None as empty, formula-like text quoted, everything else unchanged."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not _is_number(value):
        return "'" + value
    return value


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return value.strip() == value and value.lower() not in ("nan", "inf", "-inf", "+inf", "infinity")


class SpreadsheetSafeResource:
    """Mixin for a django-import-export resource: every exported cell goes through `spreadsheet_safe` (instead of
    the library's IMPORT_EXPORT_ESCAPE_FORMULAE_ON_EXPORT, which only drops one leading `=`)."""

    def export_field(self, field, instance, **kwargs):
        return spreadsheet_safe(super().export_field(field, instance, **kwargs))
