"""The chain's canonical text is json.dumps's, byte for byte, whichever encoder wrote it: old
chains verify, and a payload json would refuse (NaN) is still refused by jsonb."""

from __future__ import annotations

import enum
import json
import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from warehouse.event_chain import _as_jsonb, _text, canonical


class Side(enum.StrEnum):  # the payloads' enums are str enums: json writes their value
    BUY = "buy"


def reference(payload) -> str:
    """The canonical text as written before orjson (json.dumps, jsonb's rewrites)."""
    text = _text(payload)
    if "e+" in text or "-0.0" in text:
        text = _text(_as_jsonb(payload))
    return text


scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.floats(min_value=-1e-3, max_value=1e-3)
    | st.floats(min_value=1e14, max_value=1e18)
    | st.text(max_size=8)
    | st.sampled_from([Side.BUY, np.float64(1.5), np.int64(3), 1e-5, 1.7993711481508e-05, 1e16])
    | st.sampled_from([-0.0, 0.0001, 12345678901234567.0, "\x7f", "é"])
)
payloads = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=6), inner, max_size=4)
        | st.dictionaries(st.integers(0, 9), inner, max_size=2)
    ),  # json writes int keys as text
    max_leaves=20,
)


@settings(max_examples=250, deadline=None)
@given(st.dictionaries(st.text(max_size=6), payloads, max_size=5))
def test_canonical_text_is_json_dumps_byte_for_byte(payload):
    assert canonical(payload) == reference(payload)


def test_the_usual_payloads_take_the_fast_path_and_equal_json():
    bar = {"ts": "2015-01-02T00:00:00+00:00", "step": 3, "marks": {"A": 101.25, "B": 99.5},
           "equity": {"main": 1_000_000.123456}}  # fmt: skip
    fill = {"fill": {"price": 166.4399086932864, "fee": 0.0, "quantity": 100.0, "side": "buy"}}
    for payload in (bar, fill):
        assert canonical(payload) == reference(payload)
    assert json.loads(canonical(bar)) == bar


def test_nan_is_written_as_json_writes_it_for_jsonb_to_refuse():
    assert canonical({"x": math.nan}) == '{"x":NaN}'
    assert canonical({"x": None}) == '{"x":null}'
