"""The stored upload files (MEDIA_ROOT, kept UPLOAD_FILE_RETENTION_DAYS) that hold a person's rows.

A row is the person's when one of its cells is their e-mail address (ignoring case and spaces) or their phone
number (any formatting: its digits are their national number, with or without the country code). The export
lists those rows; the erasure blanks every cell of them and writes the file back in place (same encoding, same
line endings, same physical line numbers, so the DLQ's line numbers still point at the right line). A file that
holds no such row is not rewritten. Upload files are the only stored copies: no archive exists to miss.
"""

from __future__ import annotations

import csv
import io
import os
import re
import tempfile
from dataclasses import dataclass, field

from django.core.files.storage import default_storage

from pipeline.ingest.reading import FileUnreadable, detect_encoding
from pipeline.models import Upload

from .person import Person

_NON_DIGITS = re.compile(r"\D")


@dataclass
class FileRows:
    upload_id: str
    filename: str
    lines: list[int] = field(default_factory=list)
    rows: list[dict] = field(default_factory=list)  # header -> value, as in the file


def _cell_is_theirs(cell: str, person: Person, phones: set[str]) -> bool:
    value = cell.strip()
    if not value:
        return False
    if person.email and value.lower().strip("<>").strip() == person.email:
        return True
    return bool(phones) and _NON_DIGITS.sub("", value) in phones


def _row_is_theirs(row: list[str], person: Person, phones: set[str]) -> bool:
    joined = "\x1f".join(row)
    # Cheap tests on the whole row first: most rows of a large file are someone else's.
    maybe = (person.email and person.email in joined.lower()) or (
        phones and person.national_digits in _NON_DIGITS.sub("", joined)
    )
    return bool(maybe) and any(_cell_is_theirs(cell, person, phones) for cell in row)


def _phones(person: Person) -> set[str]:
    digits = person.national_digits
    return {digits, "1" + digits} if digits else set()


def _read(path: str) -> tuple[str, str, list[tuple[int, int, list[str]]]]:
    """(encoding, line ending, [(first physical line, last physical line, fields)]) of every record, header
    included."""
    encoding, _ = detect_encoding(path)
    with open(path, "rb") as handle:
        head = handle.read(1 << 16)
    ending = "\r\n" if b"\r\n" in head else "\n"
    with open(path, encoding=encoding, newline="") as handle:
        reader = csv.reader(line.replace("\x00", "") for line in handle)
        records, previous = [], 0
        for row in reader:
            records.append((previous + 1, reader.line_num, row))
            previous = reader.line_num
    return encoding, ending, records


def _stored_files():
    return Upload.objects.exclude(file="").order_by("created_at").values_list("id", "filename", "file")


def person_file_rows(person: Person) -> list[FileRows]:
    """Every stored upload file's rows that are the person's (needs a context that sees every upload)."""
    found, phones = [], _phones(person)
    for upload_id, filename, name in _stored_files():
        try:
            _, _, records = _read(default_storage.path(name))
        except (OSError, FileUnreadable):
            continue  # a file gone or unreadable holds nothing we can export
        header = records[0][2] if records else []
        theirs = FileRows(upload_id=str(upload_id), filename=filename)
        for line, _, row in records[1:]:
            if _row_is_theirs(row, person, phones):
                theirs.lines.append(line)
                theirs.rows.append(dict(zip(header, row, strict=False)))
        if theirs.lines:
            found.append(theirs)
    return found


def person_files_blank(person: Person) -> list[FileRows]:
    """Blank every cell of the person's rows in every stored upload file, in place (atomic rename); returns what
    was blanked (lines only). Raises OSError when a file that holds them cannot be written."""
    blanked, phones = [], _phones(person)
    for upload_id, filename, name in _stored_files():
        path = default_storage.path(name)
        try:
            encoding, ending, records = _read(path)
        except FileNotFoundError:
            continue
        except FileUnreadable:
            continue  # never parsed, so nothing of it was ingested; it is deleted with the upload's retention
        lines = [line for line, _, row in records[1:] if _row_is_theirs(row, person, phones)]
        if not lines:
            continue
        wanted = set(lines)
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator=ending)
        for line, last, row in records:
            if line in wanted:
                # A record that spanned several lines keeps its line breaks (and nothing else), so later lines keep
                # their numbers.
                row = [""] * (len(row) - 1) + ["\n" * (last - line)]
            writer.writerow(row)
        _replace(path, buffer.getvalue().encode(encoding))
        blanked.append(FileRows(upload_id=str(upload_id), filename=filename, lines=lines))
    return blanked


def _replace(path: str, content: bytes) -> None:
    directory = os.path.dirname(path)
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".erase-")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(content)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, os.stat(path).st_mode & 0o777)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
