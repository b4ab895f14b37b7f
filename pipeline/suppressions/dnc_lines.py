"""The DNC import's line work, run in child processes (no Django, no database): each reads its byte range of a
registry file and returns the binary COPY rows of its numbers with their phone key (pipeline/suppressions/dnc.py).

Binary COPY (PostgreSQL's `FORMAT binary`): each row is a field count, then per field its length and bytes —
`number` (int8), `phone_key` (uuid: the 16 bytes of the phone blind index) and, for the load table, `deleted`
(bool); a full file goes straight into the registry without the flag. No hex, no text for the server to parse;
the caller sends `COPY_SIGNATURE` before the rows and `COPY_TRAILER` after.
"""

from __future__ import annotations

import re
import struct

from security.pii import PHONE, CodecKeys, PiiCodec

_NON_DIGITS = re.compile(rb"\D+")
_ZERO_ONE = b"01"

COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)  # signature, flags, no header extension
COPY_TRAILER = struct.pack(">h", -1)
# (2 or 3 fields) (8) number (16) key, then for the load table (1) deleted — `16s` keeps the first 16 bytes of
# the digest.
_ROW = struct.Struct(">hiqi16s")
_DELETED = {False: struct.pack(">ib", 1, 0), True: struct.pack(">ib", 1, 1)}


def number_of(line: bytes) -> bytes | None:
    """A registry line's ten digits (area code + number; a leading 1 dropped), or None for a line without."""
    digits = line if len(line) == 10 and line.isdigit() else _NON_DIGITS.sub(b"", line)
    if len(digits) == 11 and digits[:1] == b"1":
        digits = digits[1:]
    if len(digits) != 10 or digits[0] in _ZERO_ONE or digits[3] in _ZERO_ONE:
        return None
    return digits


# --- the child processes ----------------------------------------------------------------------------------

_states = None


def worker_init(plain_keys: dict) -> None:
    """The keyed HMAC states of `+1…` phones, once per process (security/pii.py `bulk_index_states`)."""
    global _states
    _states = PiiCodec(CodecKeys.from_plain(plain_keys)).bulk_index_states(PHONE, prefix=b"+1")


def _read_lines(path: str, start: int, end: int) -> list[bytes]:
    """The lines that start in [start, end) of the file (a line straddling `start` belongs to the range before)."""
    with open(path, "rb") as handle:
        if start:
            handle.seek(start - 1)
            if handle.read(1) != b"\n":
                handle.readline()
        position = handle.tell()
        data = handle.read(max(0, end - position))
        if data and not data.endswith(b"\n"):
            data += handle.readline()  # finish the range's last line
    return data.replace(b"\r", b"").split(b"\n")


def chunk_copy_rows(job: tuple[str, int, int, bool | None]) -> tuple[bytes, int, int]:
    """(binary COPY rows, numbers, invalid lines) of the lines that start in [start, end) of the file, each row
    `(number, phone key)` for the registry (`deleted` None) or `(number, phone key, deleted)` for the load table.
    The hot loop: ~10M iterations per registry file, so the HMAC is inlined (the `+1` already in the inner
    state), the methods are locals and a plain ten-digit line skips the regular expression."""
    path, start, end, deleted = job
    inner, outer = _states
    inner_copy, outer_copy, pack = inner.copy, outer.copy, _ROW.pack
    fields, suffix = (2, b"") if deleted is None else (3, _DELETED[deleted])
    rows: list[bytes] = []
    append = rows.append
    invalid = 0
    for line in _read_lines(path, start, end):
        if len(line) == 10 and line.isdigit() and line[0] > 49 and line[3] > 49:  # 49: b"1"
            digits = line
        else:
            digits = number_of(line)
            if digits is None:
                invalid += bool(line.strip())
                continue
        state = inner_copy()
        state.update(digits)
        final = outer_copy()
        final.update(state.digest())
        append(pack(fields, 8, int(digits), 16, final.digest()) + suffix)
    return b"".join(rows), len(rows), invalid
