"""The pure SSE decoder, against the WHATWG examples and awkward byte boundaries.

Spec: https://html.spec.whatwg.org/multipage/server-sent-events.html
(9.2.5 "Parsing an event stream", 9.2.6 "Interpreting an event stream").
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence

import pytest
import sseclient
from hypothesis import given, settings
from hypothesis import strategies as st

from rxchat._wire.sse import ServerSentEvent, SSEDecoder
from rxchat.errors import StreamError


def decode(*pieces: bytes, end: bool = True) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    events = [e for piece in pieces for e in decoder.feed(piece)]
    if end:
        events += decoder.end()
    return events


def datas(events: Iterable[ServerSentEvent]) -> list[str]:
    return [e.data for e in events]


def bytewise(body: bytes) -> list[bytes]:
    return [body[i:i + 1] for i in range(len(body))]


# --- The examples of WHATWG 9.2.6 ---------------------------------------------------


def test_spec_example_three_messages_with_a_two_line_one() -> None:
    body = (
        b"data: This is the first message.\n\n"
        b"data: This is the second message, it\n"
        b"data: has two lines.\n\n"
        b"data: This is the third message.\n\n"
    )
    assert datas(decode(body)) == [
        "This is the first message.",
        "This is the second message, it\nhas two lines.",
        "This is the third message.",
    ]


def test_spec_example_event_types() -> None:
    body = (
        b"event: add\ndata: 73857293\n\n"
        b"event: remove\ndata: 2153\n\n"
        b"event: add\ndata: 113411\n\n"
    )
    assert [(e.event, e.data) for e in decode(body)] == [
        ("add", "73857293"), ("remove", "2153"), ("add", "113411"),
    ]


def test_spec_example_stock_ticker_multiline_data() -> None:
    assert datas(decode(b"data: YHOO\ndata: +2\ndata: 10\n\n")) == ["YHOO\n+2\n10"]


def test_spec_example_comment_ids_and_single_space_removed() -> None:
    body = (
        b": test stream\n\n"
        b"data: first event\nid: 1\n\n"
        b"data:second event\nid\n\n"
        b"data:  third event\n"
    )
    events = decode(body, end=False)
    assert [(e.data, e.id) for e in events] == [("first event", "1"), ("second event", "")]
    # The last block is not followed by a blank line: not dispatched while streaming.


def test_spec_example_empty_data_fields() -> None:
    body = b"data\n\ndata\ndata\n\ndata:"
    events = decode(body, end=False)
    assert datas(events) == ["", "\n"]
    # "data:" without any line ending is cut off: dropped at end of body.
    decoder = SSEDecoder()
    decoder.feed(body)
    assert decoder.end() == []


def test_spec_example_space_after_colon_is_optional() -> None:
    assert datas(decode(b"data:test\n\ndata: test\n\n")) == ["test", "test"]


# --- Line endings (9.2.5: CRLF, LF, CR) -----------------------------------------------


@pytest.mark.parametrize("eol", [b"\r\n", b"\n", b"\r"], ids=["crlf", "lf", "cr"])
def test_each_line_ending(eol: bytes) -> None:
    body = b"data: a" + eol + b"data: b" + eol + eol + b"data: c" + eol + eol
    assert datas(decode(body)) == ["a\nb", "c"]
    assert datas(decode(*bytewise(body))) == ["a\nb", "c"]


def test_mixed_line_endings_including_lf_cr_lf() -> None:
    body = b"data: a\n\r\ndata: b\r\rdata: c\r\n\ndata: d\n\r"
    assert datas(decode(body)) == ["a", "b", "c", "d"]


def test_cr_at_end_of_a_feed_dispatches_without_waiting() -> None:
    decoder = SSEDecoder()
    assert datas(decoder.feed(b"data: x\r\r")) == ["x"]
    # The next feed starting with \n is the partner of the last \r, not a blank line.
    assert decoder.feed(b"\ndata: y\r\n\r\n") == [ServerSentEvent(data="y")]


def test_empty_feed_between_cr_and_lf_keeps_them_one_line_ending() -> None:
    decoder = SSEDecoder()
    events = decoder.feed(b"data: a\r")
    events += decoder.feed(b"")
    events += decoder.feed(b"\ndata: b\n\n")
    assert datas(events) == ["a\nb"]


# --- Fields --------------------------------------------------------------------------


def test_comments_are_ignored() -> None:
    body = b": ping\n\n: OPENROUTER PROCESSING\ndata: x\n: inside\n\n"
    assert datas(decode(body)) == ["x"]


def test_unknown_fields_and_retry() -> None:
    events = decode(b"foo: bar\nretry: 1500\nretry: soon\ndata: x\n\n")
    assert events == [ServerSentEvent(data="x", retry=1500)]


def test_id_with_nul_is_ignored_and_id_persists() -> None:
    events = decode(b"id: 7\ndata: a\n\nid: 8\x009\ndata: b\n\n")
    assert [(e.data, e.id) for e in events] == [("a", "7"), ("b", "7")]


def test_event_type_resets_after_dispatch_and_without_data() -> None:
    events = decode(b"event: error\n\ndata: a\n\nevent: error\ndata: b\n\n")
    assert [(e.event, e.data) for e in events] == [("message", "a"), ("error", "b")]


# --- Byte order mark (9.2.6: one leading BOM is ignored) -----------------------------


def test_leading_bom_is_dropped() -> None:
    assert datas(decode(b"\xef\xbb\xbfdata: The\n\n")) == ["The"]


@pytest.mark.parametrize("cut", [1, 2, 3, 4])
def test_bom_split_across_feeds(cut: int) -> None:
    body = b"\xef\xbb\xbfdata: The\n\n"
    assert datas(decode(body[:cut], body[cut:])) == ["The"]


def test_only_one_bom_is_dropped() -> None:
    # A second BOM makes the field name "\ufeffdata", an unknown field.
    assert datas(decode(b"\xef\xbb\xbf\xef\xbb\xbfdata: x\n\ndata: y\n\n")) == ["y"]


# --- End of body ---------------------------------------------------------------------


def test_event_cut_mid_line_is_dropped() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b'data: {"a": 1}\n\ndata: {"choices": [{"del') == [
        ServerSentEvent(data='{"a": 1}')
    ]
    assert decoder.has_pending
    assert decoder.end() == []


def test_event_cut_after_a_complete_line_in_a_multiline_event_is_dropped() -> None:
    # The last line started but did not end: the whole event is incomplete.
    assert decode(b"data: a\ndata: b") == []


def test_final_event_without_blank_line_is_dispatched_leniently() -> None:
    # Its last line ended with a newline; only the blank line is missing.
    assert datas(decode(b"data: a\n\ndata: last\n")) == ["a", "last"]
    assert datas(decode(b"data: a\n\ndata: last\r")) == ["a", "last"]


def test_end_with_nothing_pending() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"data: a\n\n: comment\n")
    assert not decoder.has_pending
    assert decoder.end() == []


# --- Errors and limits ---------------------------------------------------------------


def test_invalid_utf8_is_a_stream_error() -> None:
    with pytest.raises(StreamError, match="UTF-8"):
        decode(b"data: \xff\xfe\n\n")


def test_utf8_character_split_across_feeds_is_joined() -> None:
    body = "data: 北京 🎯\n\n".encode()
    for cut in range(1, len(body)):
        assert datas(decode(body[:cut], body[cut:])) == ["北京 🎯"], cut


def test_event_over_the_limit_is_a_stream_error() -> None:
    decoder = SSEDecoder(max_event_bytes=100)
    with pytest.raises(StreamError, match="larger than 100 bytes"):
        decoder.feed(b"data: " + b"x" * 60 + b"\ndata: " + b"y" * 60 + b"\n\n")


def test_endless_line_fed_in_pieces_fails_with_bounded_memory() -> None:
    decoder = SSEDecoder(max_event_bytes=10_000)
    fed = 0
    with pytest.raises(StreamError, match="larger than"):
        decoder.feed(b"data: ")
        for _ in range(1_000_000):
            decoder.feed(b"x" * 100)
            fed += 100
    # It gave up just after the limit, not after buffering everything it was sent.
    assert fed <= 10_100
    assert decoder._partial_size <= 10_100  # the held bytes are bounded


@pytest.mark.parametrize(
    "bad",
    [b"data: \xff\xfe\n\n", b"data: " + b"x" * 200 + b"\n\n", b"data: " + b"x" * 200],
    ids=["invalid-utf8", "event-over-limit", "line-over-limit"],
)
@pytest.mark.parametrize("eol", [b"\n", b"\r\n"], ids=["fast-path", "line-path"])
def test_events_before_bad_input_in_one_feed_are_returned_first(
    bad: bytes, eol: bytes
) -> None:
    decoder = SSEDecoder(max_event_bytes=100)
    good = b"data: one" + eol + eol + b"data: two" + eol + eol
    assert datas(decoder.feed(good + bad.replace(b"\n", eol))) == ["one", "two"]
    with pytest.raises(StreamError):
        decoder.check()
    with pytest.raises(StreamError):  # the next call raises it, and every later one
        decoder.feed(b"data: three\n\n")
    with pytest.raises(StreamError):
        decoder.end()


def test_bad_input_with_no_event_before_it_raises_at_once() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"data: one\n\n")
    decoder.check()  # nothing held back
    with pytest.raises(StreamError, match="UTF-8"):
        decoder.feed(b"data: \xff\n\n")


def test_many_small_events_are_not_limited_together() -> None:
    decoder = SSEDecoder(max_event_bytes=100)
    events = decoder.feed(b"data: 0123456789012345678901234567890123456789\n\n" * 50)
    assert len(events) == 50


# --- Property: any split gives the same events --------------------------------------

_TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="\r\n"),
    max_size=12,
)
_EOL = st.sampled_from([b"\n", b"\r", b"\r\n"])


@st.composite
def event_streams(draw: st.DrawFn) -> tuple[bytes, list[ServerSentEvent]]:
    """A valid stream of events with random unicode and line endings, and its events."""
    body = bytearray(b"\xef\xbb\xbf" if draw(st.booleans()) else b"")
    expected: list[ServerSentEvent] = []
    last_id: str | None = None
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["message", "message", "error", "custom"]))
        lines: list[bytes] = []
        if draw(st.booleans()):
            lines.append(b": " + draw(_TEXT).encode())
        if kind != "message":
            lines.append(f"event: {kind}".encode())
        values = draw(st.lists(_TEXT, min_size=1, max_size=3))
        for value in values:
            space = draw(st.booleans()) or value.startswith(" ")
            lines.append(("data: " if space else "data:").encode() + value.encode())
        if draw(st.booleans()):
            last_id = draw(_TEXT.filter(lambda t: "\0" not in t))
            lines.append(b"id: " + last_id.encode())
        for line in [*lines, b""]:
            eol = draw(_EOL)
            if eol == b"\n" and body.endswith(b"\r"):
                eol = b"\r"  # a lone CR then LF would be one CRLF line ending
            body += line + eol
        expected.append(ServerSentEvent(event=kind, data="\n".join(values), id=last_id))
    return bytes(body), expected


def _split(body: bytes, cuts: Sequence[int]) -> list[bytes]:
    bounds = [0, *sorted(c % (len(body) + 1) for c in cuts), len(body)]
    return [body[a:b] for a, b in itertools.pairwise(bounds)]


@settings(max_examples=300, deadline=None)
@given(stream=event_streams(), cuts=st.lists(st.integers(0, 10_000), max_size=30))
def test_any_split_gives_the_same_events(
    stream: tuple[bytes, list[ServerSentEvent]], cuts: list[int]
) -> None:
    body, expected = stream
    assert decode(body) == expected
    assert decode(*_split(body, cuts)) == expected  # includes empty pieces


@settings(max_examples=50, deadline=None)
@given(stream=event_streams())
def test_byte_at_a_time_gives_the_same_events(
    stream: tuple[bytes, list[ServerSentEvent]],
) -> None:
    body, expected = stream
    assert decode(*bytewise(body)) == expected


# --- Why not sseclient-py --------------------------------------------------------------


def _sseclient_datas(*pieces: bytes) -> list[str]:
    return [e.data for e in sseclient.SSEClient(iter(pieces)).events()]


def test_sseclient_loses_the_event_after_a_bom_we_keep_it() -> None:
    body = b"\xef\xbb\xbfdata: The\n\ndata: end\n\n"
    assert _sseclient_datas(body) == ["end"]
    assert datas(decode(body)) == ["The", "end"]


def test_sseclient_dispatches_a_cut_off_event_we_drop_it() -> None:
    body = b"data: complete\n\ndata: {\"choices\": [{\"delta\": {\"cont"
    assert _sseclient_datas(body) == ["complete", '{"choices": [{"delta": {"cont']
    assert datas(decode(body)) == ["complete"]


def test_sseclient_misses_an_lf_crlf_boundary_we_find_it() -> None:
    body = b"data: a\n\r\ndata: b\n\r\n"
    assert _sseclient_datas(body) == ["a\nb"]
    assert datas(decode(body)) == ["a", "b"]
