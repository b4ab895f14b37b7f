"""The fast path of staging (pipeline/ingest/columnar.py) against the careful path (`StagingLayout.row` and the
normalisers of pipeline/ingest/normalise.py): each fast path alone on generated values, and whole staged rows on
the corpus of awkward CSVs and on generated rows. Encrypted values are compared after decryption (their nonces
differ). Pure: no database."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.ingest import columnar
from pipeline.ingest import normalise as n
from pipeline.ingest.reading import detect_encoding, records
from pipeline.ingest.rows import StagingLayout, Territory
from security.pii import EMAIL, PHONE, RAW_ROW, CodecKeys, PiiCodec

CORPUS = Path(__file__).resolve().parent.parent / "fixtures" / "csv"
CODEC = PiiCodec(CodecKeys(encryption=(("k1", b"\x01" * 32),), blind_index=(("1", b"\x02" * 32),)))
TERRITORY = Territory(
    by_prefix={"921": "broker-921", "9": "broker-9"}, by_state={"CA": "broker-ca", "TX": "broker-tx"}
)

DIGITS = st.from_regex(r"[0-9]{10}", fullmatch=True)
PHONES = st.one_of(
    st.builds(
        lambda digits, spelling: spelling.format(a=digits[:3], b=digits[3:6], c=digits[6:]),
        DIGITS,
        st.sampled_from(
            [
                "{a}{b}{c}",
                "{a}-{b}-{c}",
                "({a}) {b}-{c}",
                "({a}){b}-{c}",
                "{a}.{b}.{c}",
                "+1 {a} {b} {c}",
                "+1{a}{b}{c}",
                "1-{a}-{b}-{c}",
                "1 ({a}) {b}-{c}",
                "+1 ({a}) {b}-{c}",
                " {a}-{b}-{c} ",
                "{a}-{b}-{c} x12",
                "+{a}{b}{c}",
                "+44 {a} {b}{c}",
                "+7 {a} {b}-{c}",
                "+2{a}{b}{c}",
                "7 ({a}) {b}-{c}",
                "({a} {b}-{c}",
                "{a}--{b}-{c}",
                "1{a}{b}{c}0",
            ]
        ),
    ),
    st.from_regex(r"[+0-9 ().x-]{0,20}", fullmatch=True),
    st.text(max_size=24),
)
EMAILS = st.one_of(
    st.from_regex(r"[A-Za-z0-9._%+'-]{1,70}@[A-Za-z0-9-]{1,12}(\.[A-Za-z0-9-]{1,8}){1,3}", fullmatch=True),
    st.from_regex(r"[ <]{0,2}[a-z.]{1,10}@[a-z]{1,8}\.[a-z]{2,3}[ >]{0,2}", fullmatch=True),
    st.from_regex(r"[a-z]{1,5}@[a-z \t]{1,6}\.[a-z ]{2,4}", fullmatch=True),
    st.builds(lambda local, domain: f"{local}@{domain}.com", st.text(max_size=10), st.text(max_size=10)),
    st.builds(lambda n_: "a" * n_ + "@example.com", st.integers(240, 260)),
    st.builds(lambda n_: "a@" + "b" * n_ + ".com", st.integers(240, 260)),
    st.text(max_size=30),
)
ZIPS = st.one_of(
    st.from_regex(r"[0-9]{5}(-[0-9]{4})?", fullmatch=True),
    st.from_regex(r"[0-9 -]{0,11}", fullmatch=True),
    st.sampled_from(
        ["00000", "00000-1234", "1234", "921011234", " 92101", "92101-", "\uff19\uff12\uff11\uff10\uff11"]
    ),
    st.text(max_size=12),
)
KEYS = st.one_of(
    st.from_regex(r"[!-~]{1,70}", fullmatch=True), st.from_regex(r"[a-z0-9 -]{0,12}", fullmatch=True), st.text()
)
STREET_WORDS = [*n.STREET_WORDS, "Main", "oak", "123", "4B", "St.", "Rd.", "#", "-", "Apt", "No.", "O'Hara", "1/2"]
STREETS = st.one_of(
    st.lists(st.sampled_from(STREET_WORDS), max_size=6).map(" ".join),
    st.lists(st.sampled_from(STREET_WORDS), max_size=6).map(",".join),
    st.text(alphabet=st.sampled_from(list("0123456789 ABCSTRElmainstreet.#,-/'NorthAPTunit\t_")), max_size=40),
    st.text(max_size=40),
)
STATES = st.one_of(
    st.sampled_from([*n.STATE_CODES, *n.STATES, "ca", "Calif.", "n.y.", "New  York"]), st.text(max_size=8)
)
CELL = st.one_of(
    st.just(""), st.text(max_size=20), st.sampled_from(["Yes", "no", "X", "$650,000", "72", "ES01, ES02"])
)


def _fast(values, column):
    return column(list(values))


@settings(max_examples=400, deadline=None)
@given(values=st.lists(PHONES, max_size=8))
def test_phones_fast_path_equals_the_careful_one(values):
    assert _fast(values, columnar.phones) == [n.phone(value) for value in values]


@settings(max_examples=400, deadline=None)
@given(values=st.lists(EMAILS, max_size=8))
def test_emails_fast_path_equals_the_careful_one(values):
    assert _fast(values, columnar.emails) == [n.email(value) for value in values]


@settings(max_examples=300, deadline=None)
@given(values=st.lists(ZIPS, max_size=8))
def test_zips_fast_path_equals_the_careful_one(values):
    assert _fast(values, columnar.zips) == [n.zip5(value) for value in values]


@settings(max_examples=300, deadline=None)
@given(values=st.lists(KEYS, max_size=8))
def test_keys_fast_path_equals_the_careful_one(values):
    assert _fast(values, columnar.keys) == [n.key(value) for value in values]


@settings(max_examples=400, deadline=None)
@given(values=st.lists(STREETS.map(n.text), max_size=8))
def test_street_lines_fast_path_equals_the_careful_one(values):
    assert _fast(values, columnar.address_lines) == [n.address_line(value) for value in values]


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(st.one_of(st.none(), st.just(""), st.text(max_size=30)), max_size=6),
    kind=st.sampled_from([EMAIL, PHONE]),
)
def test_blind_indexes_and_encryption_in_blocks_equal_one_at_a_time(values, kind):
    assert CODEC.blind_index_many(values, kind) == [CODEC.blind_index(value, kind) for value in values]
    sealed = CODEC.encrypt_many(values, kind)
    assert [CODEC.decrypt(token, kind) for token in sealed] == [value or value for value in values]
    assert all(token == value for token, value in zip(sealed, values, strict=True) if not value)


# Whole staged rows ------------------------------------------------------------------------------------------------


def _layout(headers, *, broker_id=None):
    return StagingLayout(
        headers,
        upload_id="00000000-0000-0000-0000-000000000001",
        broker_id=broker_id,
        territory=TERRITORY,
        email_codes=frozenset({"ES01", "EV"}),
        phone_codes=frozenset({"PV"}),
        codec=CODEC,
    )


def _opened(layout, staged):
    """A staged row with its encrypted values decrypted (raw row, sealed payload cells, e-mail, phone)."""
    staged = list(staged)
    if staged[2] is not None:
        staged[2] = CODEC.decrypt(json.loads(staged[2])["encrypted"], RAW_ROW)
    if staged[3] is not None:
        payload = json.loads(staged[3])
        for index, kind in layout.sealed_unknown.items():
            key = layout.raw_keys[index]
            if key in payload:
                payload[key] = CODEC.decrypt(payload[key], kind)
        staged[3] = payload
    staged[6] = CODEC.decrypt(staged[6], EMAIL)
    staged[7] = CODEC.decrypt(staged[7], PHONE)
    return staged


def assert_fast_equals_careful(layout, pairs):
    careful = [layout.row(list(row), line) for row, line in pairs]
    columns, rejected = layout.block([(list(row), line) for row, line in pairs])
    fast = [list(staged) for staged in zip(*columns, strict=True)] if columns and pairs else []
    assert len(fast) == len(pairs)
    assert rejected == sum(reason is not None for _, reason in careful)
    for (expected, _), got in zip(careful, fast, strict=True):
        assert _opened(layout, got) == _opened(layout, expected)


def _copy_text(layout, pairs):
    out = io.StringIO()
    layout.write_copy_text(out, pairs)
    return out.getvalue()


@pytest.mark.parametrize("name", sorted(path.name for path in CORPUS.glob("*.csv") if path.name != "undecodable.csv"))
@pytest.mark.parametrize("broker_id", [None, "broker-upload"])
def test_corpus_staged_rows_equal_the_careful_path(name, broker_id):
    path = CORPUS / name
    encoding, has_nul = detect_encoding(str(path))
    with open(path, encoding=encoding, newline="") as handle:
        stream = (line.replace("\x00", "") for line in handle) if has_nul else handle
        found = list(records(stream))
    if not found:
        return
    (_, headers), data = found[0], found[1:]
    layout = _layout(headers, broker_id=broker_id)
    pairs = [(row, line) for line, row in data]
    assert_fast_equals_careful(layout, pairs)
    # And the COPY text: as many lines as rows, each with every column.
    text = _copy_text(layout, pairs)
    assert text.count("\n") == len(pairs)
    assert all(line.count("\t") == 3 + 31 for line in text.splitlines())


def test_the_benchmark_file_shapes_equal_the_careful_path(tmp_path):
    from benchmarks.ingest_files import generate

    path = tmp_path / "bench.csv"
    generate(path, 3000, offset=0)
    generate(tmp_path / "shared.csv", 2000, offset=0, shared_address=0.3)
    for file in (path, tmp_path / "shared.csv"):
        with open(file, newline="") as handle:
            found = list(records(handle))
        layout = _layout(found[0][1])
        assert_fast_equals_careful(layout, [(row, line) for line, row in found[1:]])


HEADERS = [
    "First Name",
    "last_name",
    "Email",
    "Phone",
    "Address",
    "Unit",
    "City",
    "State",
    "Zip",
    "MAK",
    "APN",
    "Est. Value",
    "Estimated Equity",
    "Property Type",
    "Age",
    "Owner Occupied",
    "Email Verification Codes",
    "Phone Verification Codes",
    "Email Verified",
    "Phone Verified",
    "Owner 2 First Name",
    "Owner 2 Last Name",
    "Owner 2 Name",
    "Mailing Address",
    "Mailing Unit",
    "Mailing City",
    "Mailing State",
    "Mailing Zip",
    "County",
    "Email 2",
    "Wireless 3",
]
STRATEGY_OF = {
    "Email": EMAILS,
    "Phone": PHONES,
    "Wireless 3": PHONES,
    "Email 2": EMAILS,
    "Address": STREETS,
    "Mailing Address": STREETS,
    "State": STATES,
    "Mailing State": STATES,
    "Zip": ZIPS,
    "Mailing Zip": ZIPS,
    "MAK": KEYS,
    "APN": KEYS,
}


@st.composite
def files(draw):
    """A header (all of HEADERS or a sample of them, in any order) and rows of its cells, some rows short, some
    with extra cells."""
    headers = draw(st.one_of(st.just(HEADERS), st.lists(st.sampled_from(HEADERS), unique=True, max_size=12)))
    headers = draw(st.permutations(headers))
    rows = []
    for line in range(draw(st.integers(0, 12))):
        row = [draw(STRATEGY_OF.get(header, CELL)) for header in headers]
        shape = draw(st.sampled_from(["full", "full", "full", "short", "long"]))
        if shape == "short":
            row = row[: draw(st.integers(0, len(row)))]
        elif shape == "long":
            row += draw(st.lists(CELL, min_size=1, max_size=3))
        rows.append((row, line + 2))
    return headers, rows


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(file=files(), broker_id=st.sampled_from([None, "broker-upload"]))
def test_generated_rows_staged_equal_the_careful_path(file, broker_id):
    headers, pairs = file
    layout = _layout(headers, broker_id=broker_id)
    assert_fast_equals_careful(layout, pairs)
