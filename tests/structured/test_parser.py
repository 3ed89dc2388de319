"""The incremental parser: any split of the text gives json.loads' value, and every
value shown extends the one before (RFC 8259 text in, the same value out)."""

from __future__ import annotations

import codecs
import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rxchat._structured.parser import JSONStream
from rxchat.errors import StructuredOutputError

_scalars = (
    st.none() | st.booleans() | st.integers(-10**20, 10**20)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.characters(codec="utf-8"), max_size=12)
)
values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                 max_size=4),
    max_leaves=20,
)


def _encoded(value: Any, ascii_only: bool, indent: int | None) -> str:
    return json.dumps(value, ensure_ascii=ascii_only, indent=indent)


def _feed(pieces: list[str]) -> tuple[Any, list[Any]]:
    stream, seen = JSONStream(), []
    for piece in pieces:
        if stream.feed(piece):
            seen.append(copy.deepcopy(stream.value))
    return stream.close(), seen


def _split(text: str, cuts: list[int]) -> list[str]:
    points = sorted({c % (len(text) + 1) for c in cuts})
    return [text[a:b] for a, b in zip([0, *points], [*points, len(text)], strict=True)]


def _extends(before: Any, after: Any) -> bool:
    """`after` only adds to `before`: keys, items, characters; scalars unchanged."""
    if isinstance(before, dict):
        return isinstance(after, dict) and list(after)[:len(before)] == list(before) and all(
            _extends(v, after[k]) for k, v in before.items())
    if isinstance(before, list):
        return isinstance(after, list) and len(after) >= len(before) and all(
            _extends(b, a) for b, a in zip(before, after, strict=False))
    if isinstance(before, str):
        return isinstance(after, str) and after.startswith(before)
    return before == after and type(before) is type(after)


@settings(max_examples=300, deadline=None)
@given(values, st.lists(st.integers(0, 10**6), max_size=12), st.booleans(),
       st.sampled_from([None, 1]))
def test_any_split_gives_the_value_of_json_loads(
    value: Any, cuts: list[int], ascii_only: bool, indent: int | None
) -> None:
    # ensure_ascii writes \uXXXX escapes (surrogate pairs for emoji), so cuts land
    # mid-escape and between the two halves of a pair; indent adds whitespace runs
    text = _encoded(value, ascii_only, indent)
    whole, seen = _feed(_split(text, cuts))
    assert whole == json.loads(text)
    for before, after in zip(seen, [*seen[1:], whole], strict=False):
        assert _extends(before, after), (before, after)


@settings(max_examples=150, deadline=None)
@given(values, st.lists(st.integers(0, 10**6), max_size=12))
def test_bytes_split_inside_multibyte_characters(value: Any, cuts: list[int]) -> None:
    data = json.dumps(value, ensure_ascii=False).encode()
    points = sorted({c % (len(data) + 1) for c in cuts})
    decoder = codecs.getincrementaldecoder("utf-8")()
    pieces = [decoder.decode(data[a:b]) for a, b in
              zip([0, *points], [*points, len(data)], strict=True)]
    assert _feed(pieces)[0] == json.loads(data)


@pytest.mark.parametrize("pieces, shown", [
    (['{"a": 1', '2}'], [{}, {"a": 12}]),                      # mid-number
    (['{"ke', 'y": "v"}'], [{}, {"key": "v"}]),                 # mid-key
    (['["ab', 'c"]'], [["ab"], ["abc"]]),                       # mid-string
    (['["a\\', 'nb"]'], [["a"], ["a\nb"]]),                     # mid-escape
    (['["\\u00', 'e9"]'], [[""], ["é"]]),                       # mid-\u escape
    (['["\\ud83d', '\\ude00"]'], [[""], ["😀"]]),                # between a pair's halves
    (['[tr', 'ue, -', '1.5e', '3]'], [[], [True], [True, -1500.0]]),
])
def test_nothing_half_written_is_shown(pieces: list[str], shown: list[Any]) -> None:
    assert _feed(pieces)[1] == shown


def test_a_number_at_the_end_of_the_text_completes_at_close() -> None:
    stream = JSONStream()
    assert not stream.feed("12")
    assert stream.close() == 12


@pytest.mark.parametrize("text", [
    '{"a" 1}', "[1,]", '{"a": 1,}', "01", "[1 2]", '"a\x01"', "{} x", "", "[", '{"a":',
    "tru", "[nul]", "1.", "-", '"\\x"', "]",
])
def test_text_that_is_not_json_fails_with_the_text(text: str) -> None:
    stream = JSONStream()
    with pytest.raises(StructuredOutputError) as caught:
        stream.feed(text)
        stream.close()
    assert caught.value.text == text


def test_the_work_of_a_piece_does_not_grow_with_what_came_before() -> None:
    # the parser keeps no text it has read: an unfinished token of a few characters
    stream = JSONStream()
    stream.feed("[" + '{"n": 1, "s": "abc"}, ' * 5000)
    assert len(stream._tail) == 0
    stream.feed('{"n": 12')
    assert stream._tail == "12"


# -- attack round: hostile JSON -------------------------------------------------------


def test_an_integer_too_long_for_python_is_a_structured_output_error() -> None:
    # int() refuses more than sys.int_info.str_digits_check_threshold digits with a
    # ValueError; that reached the user untyped.
    stream = JSONStream()
    with pytest.raises(StructuredOutputError, match="5000 digits"):
        for piece in ('{"a": [', "9" * 5000, "]}"):
            stream.feed(piece)


@pytest.mark.parametrize(
    ("pieces", "expected"),
    [
        (['["\\ud83d x"]'], ["\ufffd x"]),  # a lone escaped high surrogate
        (['["x \\ude00"]'], ["x \ufffd"]),  # a lone escaped low surrogate
        (['["\\ud83d', '\\ude00"]'], ["\U0001f600"]),  # an escaped pair split
        (['["\ud83d', '\ude00 ok"]'], ["\U0001f600 ok"]),  # a raw pair split across deltas
        (['{"\\udc00": 1}'], {"\ufffd": 1}),  # in a key
    ],
)
def test_strings_are_valid_unicode_shown_and_final(pieces: list[str], expected: Any) -> None:
    final, seen = _feed(pieces)
    assert final == expected
    for value in [*seen, final]:
        text = json.dumps(value, ensure_ascii=False)
        text.encode("utf-8")  # no surrogate code point anywhere: this would raise
