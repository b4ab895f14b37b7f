"""The DNC import's line work, run in child processes (no Django, no database): each reads its byte range of a
registry file and returns the COPY text of its numbers with their phone blind index (pipeline/suppressions/dnc.py)."""

from __future__ import annotations

import re

from security.pii import PHONE, CodecKeys, PiiCodec

_NON_DIGITS = re.compile(rb"\D+")
_ZERO_ONE = b"01"


def number_of(line: bytes) -> bytes | None:
    """A registry line's ten digits (area code + number; a leading 1 dropped), or None for a line without."""
    digits = line if len(line) == 10 and line.isdigit() else _NON_DIGITS.sub(b"", line)
    if len(digits) == 11 and digits[:1] == b"1":
        digits = digits[1:]
    if len(digits) != 10 or digits[0] in _ZERO_ONE or digits[3] in _ZERO_ONE:
        return None
    return digits


# --- the child processes ----------------------------------------------------------------------------------

_indexer = None


def worker_init(plain_keys: dict) -> None:
    global _indexer
    _indexer = PiiCodec(CodecKeys.from_plain(plain_keys)).bulk_indexer(PHONE)


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


def chunk_copy_text(job: tuple[str, int, int, bool]) -> tuple[str, int, int]:
    """(COPY text, numbers, invalid lines) of the lines that start in [start, end) of the file: `number\\tbidx\\tf`
    per number, or `number\\t\\N\\tt` for a deletion file (no index needed)."""
    path, start, end, deleted = job
    index = _indexer
    out: list[str] = []
    invalid = 0
    for line in _read_lines(path, start, end):
        digits = number_of(line)
        if digits is None:
            invalid += bool(line.strip())
            continue
        number = digits.decode()
        out.append(f"{number}\t\\N\tt" if deleted else f"{number}\t{index(b'+1' + digits)}\tf")
    return ("\n".join(out) + "\n") if out else "", len(out), invalid
