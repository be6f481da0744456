"""provlink's canonical JSON is RFC 8785 byte for byte: its ``json.dumps`` fast path and the
``rfc8785`` package agree on every JSON value (property test), and what neither can write
exactly is refused the same way."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from provlink.canonical import NotCanonicalError, canonical_json, json_digest

# every JSON value rfc8785 accepts: text across the planes (non-BMP and controls included),
# safe integers, every finite double, nested objects and arrays
text = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
scalars = (st.none() | st.booleans() | text
           | st.integers(min_value=-(2**53 - 1), max_value=2**53 - 1)
           | st.floats(allow_nan=False, allow_infinity=False))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(text, inner, max_size=4), max_leaves=25)


@settings(max_examples=600, deadline=None)
@given(values)
def test_fast_path_writes_the_rfc8785_bytes(value: object) -> None:
    assert canonical_json(value) == rfc8785.dumps(value)


@pytest.mark.parametrize("number", [1.0, -0.0, 1e-4, 9.999e-5, 1e16, 1e21, 1.5e300, 5e-324,
                                    2.0**53, 0.1 + 0.2, 123456789.125])
def test_number_boundaries_of_the_fast_path(number: float) -> None:
    assert canonical_json({"n": number, "l": [number]}) == rfc8785.dumps({"n": number,
                                                                          "l": [number]})


def test_keys_sort_by_utf16_units_beyond_the_bmp() -> None:
    value = {"\U0001f600": 1, "\uff61": 2, "a": 3}  # code point order differs from UTF-16's
    assert canonical_json(value) == rfc8785.dumps(value)
    written = canonical_json(value)  # U+1F600 is D83D DE00 in UTF-16: before U+FF61
    assert written.index("\U0001f600".encode()) < written.index("\uff61".encode())


@pytest.mark.parametrize("bad", [math.nan, math.inf, "\ud800", {"\udfff": 1}, {1: "x"},
                                 object(), 2**53 + 1])
def test_what_has_no_canonical_form_is_refused(bad: object) -> None:
    with pytest.raises(NotCanonicalError):
        canonical_json([bad])


def test_real_events_take_the_fast_path() -> None:
    from provlink.canonical import _fast

    golden = Path(__file__).resolve().parents[1] / "integration" / "golden"
    events = json.loads((golden / "airflow_ml_pipeline.json").read_text(encoding="utf-8"))
    assert events and all(_fast(event) == event for event in events)


def test_equal_values_have_one_digest() -> None:
    assert json_digest({"b": 1.0, "a": "é"}) == json_digest({"a": "é", "b": 1})
    assert json_digest([2**60]) == json_digest([float(2**60)])
