"""The DNC import's line work, run in child processes (no Django, no database): each reads its byte range of a
registry file and returns the COPY text of its numbers with their phone blind index (pipeline/suppressions/dnc.py)."""

from __future__ import annotations

import re

from security.pii import PHONE, CodecKeys, PiiCodec

_NON_DIGITS = re.compile(rb"\D+")


def number_of(line: bytes) -> int | None:
    """A registry line's ten-digit number as an integer, or None for a line that holds none."""
    digits = _NON_DIGITS.sub(b"", line)
    if len(digits) == 11 and digits[:1] == b"1":
        digits = digits[1:]
    if len(digits) != 10 or digits[:1] in b"01" or digits[3:4] in b"01":
        return None
    return int(digits)


# --- the child processes ----------------------------------------------------------------------------------

_worker_codec: PiiCodec | None = None


def worker_init(plain_keys: dict) -> None:
    global _worker_codec
    _worker_codec = PiiCodec(CodecKeys.from_plain(plain_keys))


def chunk_copy_text(job: tuple[str, int, int, bool]) -> tuple[str, int, int]:
    """(COPY text, numbers, invalid lines) of the lines that start in [start, end) of the file."""
    path, start, end, deleted = job
    index = _worker_codec.blind_index
    flag = "t" if deleted else "f"
    out, count, invalid = [], 0, 0
    with open(path, "rb") as handle:
        if start:
            handle.seek(start - 1)
            if handle.read(1) != b"\n":
                handle.readline()  # the line that straddles `start` belongs to the previous chunk
        while handle.tell() < end:
            line = handle.readline()
            if not line:
                break
            number = number_of(line)
            if number is None:
                invalid += bool(line.strip())
                continue
            if deleted:
                out.append(f"{number}\t\\N\t{flag}\n")
            else:
                out.append(f"{number}\t{index(f'+1{number}', PHONE)}\t{flag}\n")
            count += 1
    return "".join(out), count, invalid
