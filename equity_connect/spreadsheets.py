"""CSV for people who open it in a spreadsheet: a cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage
return would run as a formula (CSV injection), so it is prefixed with `'` — unless it is a plain number, which
a spreadsheet reads as a number anyway. Every CSV the product writes for people goes through this."""

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
