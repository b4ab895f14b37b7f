"""The time zones of each US state, DC and territory, for the contact windows (contact_windows.py).

A state that spans several zones lists every one of them, and a lead there may be contacted only when every
zone's local time allows it (the intersection), so no lead is reached before or after hours whatever part of
the state they live in. The zones are IANA names: zoneinfo applies each one's daylight-saving rules for the
actual date (Arizona keeps standard time all year, Hawaii has no daylight-saving time).

Not modelled: the Navajo Nation in north-eastern Arizona, which keeps daylight-saving time (Arizona is
America/Phoenix throughout), and places that keep a neighbour's time unofficially (Phenix City, Alabama).
"""

from __future__ import annotations

from functools import cache
from zoneinfo import ZoneInfo

EASTERN, CENTRAL, MOUNTAIN, PACIFIC = "America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles"

STATE_ZONES: dict[str, tuple[str, ...]] = {
    "AL": (CENTRAL,),
    "AK": ("America/Anchorage", "America/Adak"),  # the Aleutians west of 169.5° W keep Hawaii-Aleutian time
    "AZ": ("America/Phoenix",),
    "AR": (CENTRAL,),
    "CA": (PACIFIC,),
    "CO": (MOUNTAIN,),
    "CT": (EASTERN,),
    "DE": (EASTERN,),
    "DC": (EASTERN,),
    "FL": (EASTERN, CENTRAL),  # the panhandle west of the Apalachicola River
    "GA": (EASTERN,),
    "HI": ("Pacific/Honolulu",),
    "ID": ("America/Boise", PACIFIC),  # the panhandle north of the Salmon River
    "IL": (CENTRAL,),
    "IN": ("America/Indiana/Indianapolis", CENTRAL),  # the north-west and south-west corners
    "IA": (CENTRAL,),
    "KS": (CENTRAL, MOUNTAIN),  # four western counties
    "KY": (EASTERN, CENTRAL),  # the western half
    "LA": (CENTRAL,),
    "ME": (EASTERN,),
    "MD": (EASTERN,),
    "MA": (EASTERN,),
    "MI": ("America/Detroit", "America/Menominee"),  # four Upper Peninsula counties keep Central time
    "MN": (CENTRAL,),
    "MS": (CENTRAL,),
    "MO": (CENTRAL,),
    "MT": (MOUNTAIN,),
    "NE": (CENTRAL, MOUNTAIN),  # the western panhandle
    "NV": (PACIFIC, MOUNTAIN),  # West Wendover keeps Mountain time
    "NH": (EASTERN,),
    "NJ": (EASTERN,),
    "NM": (MOUNTAIN,),
    "NY": (EASTERN,),
    "NC": (EASTERN,),
    "ND": (CENTRAL, MOUNTAIN),  # the south-west
    "OH": (EASTERN,),
    "OK": (CENTRAL,),
    "OR": (PACIFIC, "America/Boise"),  # most of Malheur County
    "PA": (EASTERN,),
    "RI": (EASTERN,),
    "SC": (EASTERN,),
    "SD": (CENTRAL, MOUNTAIN),  # the western half
    "TN": (EASTERN, CENTRAL),  # middle and west Tennessee
    "TX": (CENTRAL, MOUNTAIN),  # El Paso and Hudspeth counties
    "UT": (MOUNTAIN,),
    "VT": (EASTERN,),
    "VA": (EASTERN,),
    "WA": (PACIFIC,),
    "WV": (EASTERN,),
    "WI": (CENTRAL,),
    "WY": (MOUNTAIN,),
    # Territories (ingestion accepts them as states).
    "PR": ("America/Puerto_Rico",),
    "GU": ("Pacific/Guam",),
    "VI": ("America/St_Thomas",),
    "AS": ("Pacific/Pago_Pago",),
    "MP": ("Pacific/Saipan",),
}
TERRITORIES = frozenset({"PR", "GU", "VI", "AS", "MP"})
# The fifty states and DC: the ones the contact-window table is seeded for.
STATES = tuple(code for code in STATE_ZONES if code not in TERRITORIES)


@cache
def zones_of(state: str) -> tuple[ZoneInfo, ...]:
    """The state's zones as ZoneInfo objects (KeyError for a code we do not know)."""
    return tuple(ZoneInfo(name) for name in STATE_ZONES[state])
