"""Property-based tests for the normalisers and the address hash: total (never raise on any text) and
idempotent; plus worked examples of each normaliser."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.ingest import normalise as n
from pipeline.ingest.columns import header_key, map_headers

TEXT = st.text(max_size=80)
ADDRESSISH = st.text(alphabet=st.sampled_from(list("0123456789 ABCSTRElmainstreet.#,-/'NorthAPTunit\t")), max_size=60)
FIELD_NORMALISERS = [n.text, n.name, n.email, n.phone, n.state, n.zip5, n.key, n.city, n.address_line]


@settings(max_examples=300, deadline=None)
@given(value=st.one_of(st.none(), TEXT, ADDRESSISH))
def test_normalisers_are_total_and_idempotent(value):
    for normaliser in FIELD_NORMALISERS:
        once = normaliser(value)
        assert once is None or isinstance(once, str)
        assert normaliser(once) == once, normaliser.__name__
    for normaliser in (n.decimal, n.age, n.boolean):
        normaliser(value)
    codes = n.codes(value)
    assert n.codes(",".join(codes)) == codes


ZIPS = st.one_of(TEXT, st.from_regex(r"[0-9]{5}", fullmatch=True))


@settings(max_examples=300, deadline=None)
@given(line=st.one_of(TEXT, ADDRESSISH), city=TEXT, state=TEXT, zip_code=ZIPS)
def test_addr_hash_is_total_and_stable_under_normalisation(line, city, state, zip_code):
    digest = n.addr_hash(line, city, state, zip_code)
    assert digest is None or len(digest) == 64
    again = n.addr_hash(n.address_line(line), n.city(city), n.state(state) or state, n.zip5(zip_code) or zip_code)
    assert again == digest


@settings(max_examples=200, deadline=None)
@given(digits=st.from_regex(r"[2-9][0-9]{2}[2-9][0-9]{6}", fullmatch=True))
def test_nanp_fast_path_matches_phonenumbers(digits):
    formatted = [
        f"({digits[:3]}) {digits[3:6]}-{digits[6:]}",
        f"1-{digits[:3]}-{digits[3:6]}-{digits[6:]}",
        f"+1 {digits}",
        digits,
    ]
    assert {n.phone(value) for value in formatted} == {"+1" + digits}
    assert n._phone_slow.__wrapped__("+1" + digits) in (None, "+1" + digits)


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ("123 Main Street", "123 MAIN ST."),
        ("45 North Oak Avenue Apt 4", "45 N OAK AVE #4"),
        ("7 Sunset Boulevard, Suite 200", "7 sunset blvd ste 200"),
        ("9 Elm Dr", "9 ELM DRIVE"),
    ],
)
def test_same_property_same_hash(left, right):
    assert n.addr_hash(left, "San Diego", "CA", "92101") == n.addr_hash(right, "SAN DIEGO", "California", "92101-4411")


def test_different_units_and_cities_differ():
    base = n.addr_hash("1 Main St #1", "San Diego", "CA", "92101")
    assert base != n.addr_hash("1 Main St #2", "San Diego", "CA", "92101")
    assert n.addr_hash("1 Main St", "San Diego", "CA", None) != n.addr_hash("1 Main St", "Fresno", "CA", None)
    assert n.addr_hash("1 Main St", None, None, None) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("(415) 555-2671", "+14155552671"),
        ("+44 20 7946 0958", "+442079460958"),
        ("555", None),
        ("", None),
        ("1 415 555 2671", "+14155552671"),
        ("not a phone", None),
    ],
)
def test_phone(value, expected):
    assert n.phone(value) == expected


def test_fields():
    assert (n.state("new york"), n.state("Tx"), n.state("Atlantis")) == ("NY", "TX", None)
    assert (n.zip5("2101"), n.zip5("92101-1234"), n.zip5("921011234"), n.zip5("abc")) == (
        "02101",
        "92101",
        "92101",
        None,
    )
    assert (n.email(" John@Example.COM "), n.email("nope")) == ("john@example.com", None)
    assert (n.name("JOHN  SMITH"), n.name("mary-jo"), n.name("McDonald")) == ("John Smith", "Mary-Jo", "McDonald")
    assert n.decimal("$650,000") == 650000 and n.decimal("1e400") is None and n.decimal("NaN") is None
    assert (n.boolean("Yes"), n.boolean("absentee"), n.boolean("maybe")) == (True, False, None)


def test_headers_match_case_space_and_punctuation_insensitively():
    fields, raw = map_headers(["Owner 1 First Name", "OWNER_1_LAST_NAME", " e-mail 1 ", "Zip", "Zip", "", "Unit #"])
    assert fields == {"first_name": 0, "last_name": 1, "email": 2, "property_zip": 3, "unit": 6}
    assert raw == ["Owner 1 First Name", "OWNER_1_LAST_NAME", "e-mail 1", "Zip", "Zip_2", "column_6", "Unit #"]
    assert header_key("\ufeffEst. Value") == "estvalue"
