"""The optional fast JSON path (orjson) gives exactly what ``json.loads`` gives."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rxchat._wire import json as _json

pytest.importorskip("orjson")


def outcome(text: str) -> tuple[str, str]:
    """The value (repr: types and key order count) or the exception type."""
    try:
        return "value", repr(_json.loads(text))
    except _json.NestingTooDeepError:  # json.loads's RecursionError, given a name and a message
        return "error", "RecursionError"
    except (ValueError, RecursionError) as exc:
        return "error", type(exc).__name__


def reference(text: str) -> tuple[str, str]:
    try:
        return "value", repr(json.loads(text))
    except (ValueError, RecursionError) as exc:
        return "error", type(exc).__name__


def test_orjson_is_in_use_when_installed() -> None:
    assert _json.FAST


@pytest.mark.parametrize(
    "text",
    [
        '{"a":1,"a":2}',  # duplicate keys: the last wins
        "123456789012345678901234567890",  # orjson would give a float
        "-9223372036854775809",
        "18446744073709551616",
        '{"n": 99999999999999999999}',
        "9223372036854775807",
        "[NaN, Infinity, -Infinity]",  # json.loads accepts these, orjson does not
        "1e400",
        '"\\ud800"',  # a lone surrogate escape
        '"\ud800"',  # a lone surrogate in the text itself
        "[" * 2000 + "]" * 2000,
        '{"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}',
        "-0.0",
        "5e-324",
        "0.1",
        '"\\u00e9\\n"',
        "",
        "[1,]",
        '{"a":1}x',
        '"tab\there"',  # a raw control character: both refuse it
    ],
)
def test_same_result_as_json_loads(text: str) -> None:
    assert outcome(text) == reference(text)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=500, deadline=None)
@given(value=json_values, ascii_only=st.booleans())
def test_any_json_document_parses_the_same(value: Any, ascii_only: bool) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only)
    assert outcome(text) == reference(text)


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet='{}[]":,0123456789.eE-+ truefalsnNaIiy\\u', max_size=40))
def test_any_text_parses_or_fails_the_same(text: str) -> None:
    assert outcome(text) == reference(text)


@pytest.mark.parametrize("depth", [2000, 100_000])
def test_deep_nesting_is_a_value_error_saying_so(depth: int) -> None:
    with pytest.raises(_json.NestingTooDeepError, match="nested too deeply"):
        _json.loads("[" * depth + "]" * depth)


def test_without_orjson_deep_nesting_is_refused_before_parsing() -> None:
    with pytest.raises(_json.NestingTooDeepError):
        _json._checked_loads("[" * 100_000 + "]" * 100_000)
    assert _json._checked_loads('["' + "[" * 2000 + '"]') == ["[" * 2000]  # in a string
