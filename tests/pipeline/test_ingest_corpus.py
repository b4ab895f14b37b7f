"""Awkward CSVs (tests/fixtures/csv/): each goes through the real pipeline; the invariant holds and every
rejected row is in the DLQ with a reason, its raw row and its line number."""

from __future__ import annotations

from pathlib import Path

import pytest

from equity_connect.db import service_context
from leads.models import Lead
from pipeline.models import PipelineDLQ
from tests.pipeline.ingest_helpers import assert_invariant, ingest

CORPUS = Path(__file__).resolve().parent.parent / "fixtures" / "csv"

# file: (status, rows_total, leads_created, rows_rejected)
EXPECTED = {
    "bom_crlf.csv": ("done", 2, 2, 0),
    "quoted.csv": ("done", 4, 3, 1),
    "blank_lines.csv": ("done", 2, 2, 0),
    "missing_extra_columns.csv": ("done", 3, 3, 0),
    "propstream.csv": ("done", 2, 2, 0),
    "unicode.csv": ("done", 3, 3, 0),
    "long_field.csv": ("done", 2, 2, 0),
    "cp1252.csv": ("done", 2, 2, 0),
    "header_only.csv": ("done", 0, 0, 0),
    "all_bad.csv": ("done", 3, 0, 3),
    "empty.csv": ("done", 0, 0, 0),
    "nul_bytes.csv": ("done", 1, 1, 0),
    "undecodable.csv": ("failed", 0, 0, 0),
}


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def test_every_corpus_file_has_an_expectation():
    assert sorted(path.name for path in CORPUS.glob("*.csv")) == sorted(EXPECTED)


@pytest.mark.django_db
@pytest.mark.parametrize("normaliser", ["in the worker", "in a process"])
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_file(name, normaliser, settings):
    # Both staging paths: small files stay in the worker, large ones go to the normaliser process.
    settings.INGEST_SUBPROCESS_MIN_BYTES = -1 if normaliser == "in the worker" else 0
    upload = ingest((CORPUS / name).read_bytes(), filename=name)
    status, total, created, rejected = EXPECTED[name]
    assert (upload.status, upload.rows_total, upload.leads_created, upload.rows_rejected) == (
        status,
        total,
        created,
        rejected,
    ), upload.error_message
    assert_invariant(upload)
    with service_context():
        dlq = list(PipelineDLQ.objects.filter(upload=upload, source="upload_row"))
        assert len(dlq) == rejected
        for item in dlq:
            assert item.reason and item.line_number and item.payload
        assert Lead.objects.filter(source_upload_id=upload.id).count() == created
        assert not upload.staging_rows.exists()


@pytest.mark.django_db
def test_quoted_fields_and_line_numbers():
    upload = ingest((CORPUS / "quoted.csv").read_bytes())
    with service_context():
        assert Lead.objects.get(mak="M1").property_address == "1 Main St, Apt 4"
        assert Lead.objects.get(mak="M1").first_name == 'Ann "Annie"'
        assert Lead.objects.get(mak="M2").last_name == "Ray, Jr."
        item = PipelineDLQ.objects.get(upload=upload)
        assert item.line_number == 5  # the record starts on line 5 and spans three lines
        assert item.payload["first_name"] == "Multi\nline\nnobody"
        assert "no dedupe key" in item.reason


@pytest.mark.django_db
def test_propstream_headers_are_mapped():
    ingest((CORPUS / "propstream.csv").read_bytes())
    with service_context():
        lead = Lead.objects.get(apn="123-456-78")
        other = Lead.objects.get(apn="999-000-11")
    assert (lead.first_name, lead.last_name, lead.email, lead.phone) == (
        "John",
        "Smith",
        "john@example.com",
        "+16195550101",
    )
    assert (lead.property_address, lead.property_zip, lead.owner_occupied, lead.age) == (
        "123 Main Street #4",
        "92101",
        True,
        71,
    )
    assert (lead.property_value, lead.estimated_equity) == (650000, 400000)
    assert lead.melissa_payload == {"County": "San Diego", "Phone 1 Type": "Mobile"}
    assert (lead.mailing_address, other.mailing_address) == ("PO Box 1", None)
    assert (other.property_state, other.phone, other.owner_occupied) == ("TX", "+15125550199", False)
    assert lead.lead_score == lead.score_breakdown["total"] > other.lead_score > 0


@pytest.mark.django_db
def test_windows_1252_is_decoded_and_recorded():
    upload = ingest((CORPUS / "cp1252.csv").read_bytes())
    assert upload.encoding == "cp1252"
    with service_context():
        lead = Lead.objects.get(mak="M1")
    assert (lead.property_city, lead.first_name, lead.last_name) == ("San José", "Renée", "\u201cQuoted\u201d")


@pytest.mark.django_db
def test_unicode_and_long_fields_are_kept():
    ingest((CORPUS / "unicode.csv").read_bytes())
    upload = ingest((CORPUS / "long_field.csv").read_bytes())
    with service_context():
        assert Lead.objects.get(mak="M2", source_upload_id__isnull=False, first_name="李").last_name == "小龍"
        merged = Lead.objects.get(mak="M1")  # the long file's M1 merged into the unicode file's M1
        assert merged.first_name == "Zoë" and merged.last_name == "Ñúñez-Łukasz"
        assert merged.melissa_payload["notes"] == "x" * 10000
    assert (upload.leads_merged, upload.leads_created) == (2, 0)


@pytest.mark.django_db
def test_undecodable_file_fails_with_a_reason():
    upload = ingest((CORPUS / "undecodable.csv").read_bytes())
    assert upload.status == "failed"
    assert "neither UTF-8 nor Windows-1252" in upload.error_message
    with service_context():
        item = PipelineDLQ.objects.get(upload=upload)
    assert item.source == "upload" and "UTF-8" in item.reason


@pytest.mark.django_db
def test_extra_values_are_kept_in_the_raw_row():
    upload = ingest((CORPUS / "missing_extra_columns.csv").read_bytes(), filename="x.csv")
    assert upload.rows_total == 3
    with service_context():
        lead = Lead.objects.get(mak="M3")
    assert lead.property_address is None
