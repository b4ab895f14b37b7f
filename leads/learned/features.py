"""The learned score's lead features: SQL columns to read them, a numeric matrix to learn from, words to explain.

`FEATURES_SELECT` reads, for leads aliased `l` (joined to their upload `u` and its partner `p`, see
`FEATURES_FROM`), the eight features in one fixed order. `Featurizer.fit(rows)` learns what it needs from the
training rows (medians for missing numbers, the states and partners seen often enough to have a column of their
own); `transform(rows)` gives the matrix, column groups per feature, so that an explanation can swap one
feature for its typical value and see what that changes (`GROUPS`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

# Property types as the rule score classes them (leads/scoring.py), so both speak of the same groups.
FEATURES_SELECT = """
l.age, l.estimated_equity::float8, l.property_value::float8, l.owner_occupied,
CASE WHEN l.property_type IS NULL OR l.property_type = '' THEN 'unknown'
     WHEN l.property_type ~* 'single|sfr' THEN 'single_family'
     WHEN l.property_type ~* 'condo|town' THEN 'condo_townhouse'
     WHEN l.property_type ~* 'multi|duplex|triplex|fourplex' THEN 'multi_family'
     ELSE 'other' END AS property_class,
l.email_verified, l.phone_verified, l.property_state,
coalesce(p.name, nullif(l.source, '')) AS partner
"""
FEATURES_FROM = "leads l LEFT JOIN uploads u ON u.id = l.source_upload_id LEFT JOIN partners p ON p.id = u.partner_id"
# Positions in a row of FEATURES_SELECT.
AGE, EQUITY, VALUE, OWNER, PROPERTY, EMAIL_VERIFIED, PHONE_VERIFIED, STATE, PARTNER = range(9)
WIDTH = 9

GROUPS = ("age", "equity", "value", "owner_occupied", "property_type", "verification", "state", "partner")
PROPERTY_CLASSES = ("single_family", "condo_townhouse", "multi_family", "other", "unknown")
PROPERTY_WORDS = {
    "single_family": "single-family home",
    "condo_townhouse": "condo or townhouse",
    "multi_family": "multi-family property",
    "other": "other property type",
    "unknown": "property type unknown",
}
MAX_STATES = 60
MAX_PARTNERS = 40
MIN_CATEGORY_ROWS = 20  # a state or partner seen less often shares the "other" column


def _column(rows: list[tuple], index: int) -> list:
    return [row[index] for row in rows]


def _numbers(rows: list[tuple], index: int) -> np.ndarray:
    return np.array(_column(rows, index), dtype=float)  # NULL -> nan


def _vocabulary(values: list, limit: int) -> tuple[str, ...]:
    counts = Counter(value for value in values if value)
    return tuple(sorted(value for value, n in counts.most_common(limit) if n >= MIN_CATEGORY_ROWS))


def _one_hot(values: list, vocabulary: tuple[str, ...]) -> np.ndarray:
    """Columns: one per known value, then "other", then "unknown" (NULL)."""
    positions = {value: index for index, value in enumerate(vocabulary)}
    other, unknown = len(vocabulary), len(vocabulary) + 1
    codes = np.fromiter(
        (unknown if not value else positions.get(value, other) for value in values), dtype=np.int64, count=len(values)
    )
    matrix = np.zeros((len(values), len(vocabulary) + 2))
    matrix[np.arange(len(values)), codes] = 1.0
    return matrix


@dataclass
class Featurizer:
    age_median: float = 70.0
    equity_median: float = 0.0
    value_median: float = 0.0
    states: tuple[str, ...] = ()
    partners: tuple[str, ...] = ()
    slices: dict[str, slice] = field(default_factory=dict)
    baseline: np.ndarray | None = None

    def fit(self, rows: list[tuple]) -> Featurizer:
        def median(index: int, default: float) -> float:
            values = _numbers(rows, index)
            values = values[~np.isnan(values)]
            return float(np.median(values)) if values.size else default

        self.age_median = median(AGE, 70.0)
        self.equity_median = median(EQUITY, 0.0)
        self.value_median = median(VALUE, 0.0)
        self.states = _vocabulary(_column(rows, STATE), MAX_STATES)
        self.partners = _vocabulary(_column(rows, PARTNER), MAX_PARTNERS)
        matrix = self.transform(rows)
        # The typical lead: each column's mean over the training rows (for one-hot groups, the mix of values).
        self.baseline = matrix.mean(axis=0) if len(rows) else np.zeros(matrix.shape[1])
        return self

    def transform(self, rows: list[tuple]) -> np.ndarray:
        parts: list[tuple[str, np.ndarray]] = []

        def number(index: int, fill: float, log: bool) -> np.ndarray:
            values = _numbers(rows, index)
            missing = np.isnan(values)
            values = np.where(missing, fill, values)
            if log:
                values = np.log1p(np.clip(values, 0, None))
            return np.column_stack([values, missing.astype(float)])

        parts.append(("age", number(AGE, self.age_median, log=False)))
        parts.append(("equity", number(EQUITY, self.equity_median, log=True)))
        parts.append(("value", number(VALUE, self.value_median, log=True)))
        owner = _column(rows, OWNER)
        parts.append(
            (
                "owner_occupied",
                np.column_stack(
                    [
                        np.array([value is True for value in owner], dtype=float),
                        np.array([value is None for value in owner], dtype=float),
                    ]
                ).reshape(len(rows), 2),
            )
        )
        parts.append(("property_type", _one_hot(_column(rows, PROPERTY), PROPERTY_CLASSES[:-1])))
        parts.append(
            (
                "verification",
                np.column_stack(
                    [
                        np.array(_column(rows, EMAIL_VERIFIED), dtype=bool).astype(float),
                        np.array(_column(rows, PHONE_VERIFIED), dtype=bool).astype(float),
                    ]
                ).reshape(len(rows), 2),
            )
        )
        parts.append(("state", _one_hot(_column(rows, STATE), self.states)))
        parts.append(("partner", _one_hot(_column(rows, PARTNER), self.partners)))
        start, slices = 0, {}
        for name, block in parts:
            slices[name] = slice(start, start + block.shape[1])
            start += block.shape[1]
        self.slices = slices
        return np.hstack([block for _, block in parts])

    def words(self, group: str, row: tuple) -> str:
        """What a broker reads for this feature of this lead (lower case; state and partner keep their names)."""
        if group == "age":
            return f"age {row[AGE]}" if row[AGE] is not None else "age unknown"
        if group in ("equity", "value"):
            index, median, noun = (
                (EQUITY, self.equity_median, "equity")
                if group == "equity"
                else (VALUE, self.value_median, "home value")
            )
            if row[index] is None:
                return f"{noun} unknown"
            return f"{'high' if float(row[index]) >= median else 'low'} {noun}"
        if group == "owner_occupied":
            return {True: "owner occupied", False: "not owner occupied"}.get(row[OWNER], "occupancy unknown")
        if group == "property_type":
            return PROPERTY_WORDS.get(row[PROPERTY], "property type unknown")
        if group == "verification":
            email, phone = bool(row[EMAIL_VERIFIED]), bool(row[PHONE_VERIFIED])
            if email and phone:
                return "verified e-mail and phone"
            return "verified e-mail" if email else ("verified phone" if phone else "no verified contact")
        if group == "state":
            return f"in {row[STATE]}" if row[STATE] else "state unknown"
        if group == "partner":
            return f"from {row[PARTNER]}" if row[PARTNER] else "source unknown"
        raise ValueError(f"unknown feature group {group!r}")
