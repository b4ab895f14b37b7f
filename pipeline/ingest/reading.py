"""Reading an upload's file: its encoding (decided once, for the whole file, and recorded on the upload)
and its CSV records with their physical line numbers. Pure: no database, no Django."""

from __future__ import annotations

import codecs
import csv
import sys
from collections.abc import Iterable, Iterator

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


class FileUnreadable(Exception):
    """The file cannot be decoded or parsed; the message says why, in words a person can act on."""


def detect_encoding(path: str, *, chunk_size: int = 1 << 20) -> tuple[str, bool]:
    """('utf-8-sig' | 'utf-8' | 'cp1252', has NUL bytes). Raises FileUnreadable when neither decodes."""
    has_nul = False
    with open(path, "rb") as handle:
        head = handle.read(3)
        handle.seek(0)
        for encoding in ("utf-8", "cp1252"):
            decoder = codecs.getincrementaldecoder(encoding)("strict")
            handle.seek(0)
            offset = 0
            try:
                while chunk := handle.read(chunk_size):
                    has_nul = has_nul or b"\x00" in chunk
                    decoder.decode(chunk)
                    offset += len(chunk)
                decoder.decode(b"", final=True)
            except UnicodeDecodeError as error:
                position = offset + error.start
                if encoding == "cp1252":
                    raise FileUnreadable(
                        f"the file is neither UTF-8 nor Windows-1252 (undecodable byte at offset {position});"
                        " export it as UTF-8 and upload it again"
                    ) from error
                continue
            if encoding == "utf-8":
                return ("utf-8-sig" if head == codecs.BOM_UTF8 else "utf-8"), has_nul
            return encoding, has_nul
    raise FileUnreadable("the file cannot be decoded")  # pragma: no cover


class BlankLines:
    """How many blank lines (and all-empty records) `records` skipped: not data, so not in `rows_total`."""

    def __init__(self) -> None:
        self.count = 0


def records(text_stream: Iterable[str], blank: BlankLines | None = None) -> Iterator[tuple[int, list[str]]]:
    """(first line number, fields) for the header and each non-blank CSV record (physical line numbers);
    the blank ones are counted in `blank`."""
    blank = blank or BlankLines()
    reader = csv.reader(text_stream)
    for headers in reader:
        if any(value.strip() for value in headers):
            break
        blank.count += 1  # blank lines before the header
    else:
        return
    yield reader.line_num, headers
    previous = reader.line_num
    for row in reader:
        start = previous + 1
        previous = reader.line_num
        if not row or not "".join(row).strip():
            blank.count += 1
            continue
        yield start, row


def header_of(path: str, *, encoding: str, has_nul: bool) -> list[str] | None:
    """The file's header (its first non-blank record), or None for a file with no header at all."""
    with open(path, encoding=encoding, newline="") as handle:
        text_stream: Iterable[str] = (line.replace("\x00", "") for line in handle) if has_nul else handle
        try:
            for _, fields in records(text_stream):
                return fields
        except csv.Error as error:
            raise FileUnreadable(f"the header line is not valid CSV: {error}") from error
    return None
