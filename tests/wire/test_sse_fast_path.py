"""The SSE decoder's ``\\n\\n`` fast path gives what its line-by-line path gives."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from rxchat._wire.sse import ServerSentEvent, SSEDecoder
from rxchat.errors import StreamError

PIECES = [
    b"data: ", b"data:", b"data: x", b"\n", b"\n\n", b"\r", b"\r\n", b"\xc3\xa9", b"\xc3",
    b"\xef\xbb\xbf", b"event: e", b"id: 1", b": c", b"retry: 5", b"y" * 20,
]


class LinesOnly(SSEDecoder):
    """The general path alone: the reference the fast path must match."""

    def _feed(self, chunk: bytes, events: list[ServerSentEvent | str], plain: bool) -> None:
        self._feed_lines(chunk, events)


def run(decoder: SSEDecoder, pieces: list[bytes]) -> list[ServerSentEvent] | str:
    try:
        events = [e for piece in pieces for e in decoder.feed(piece)]
        return events + decoder.end()
    except StreamError:
        return "error"


@settings(max_examples=1000, deadline=None)
@given(
    parts=st.lists(st.sampled_from(PIECES), max_size=30),
    cuts=st.lists(st.integers(min_value=0, max_value=600), max_size=5),
)
def test_fast_path_matches_the_line_by_line_path(parts: list[bytes], cuts: list[int]) -> None:
    body = b"".join(parts)
    points = sorted({c % (len(body) + 1) for c in cuts})
    pieces = [body[a:b] for a, b in zip([0, *points], [*points, len(body)], strict=True)]
    assert run(SSEDecoder(), pieces) == run(LinesOnly(), pieces)


def run_data(decoder: SSEDecoder, pieces: list[bytes]) -> list[tuple[str, str]] | str:
    """``feed_data``: each event's type and data (a plain event, a ``str``, is a
    ``message``)."""
    try:
        events = [e for piece in pieces for e in decoder.feed_data(piece)] + decoder.end()
    except StreamError:
        return "error"
    return [("message", e) if isinstance(e, str) else (e.event, e.data) for e in events]


def kinds(events: list[ServerSentEvent] | str) -> list[tuple[str, str]] | str:
    return events if isinstance(events, str) else [(e.event, e.data) for e in events]


@settings(max_examples=1000, deadline=None)
@given(
    parts=st.lists(st.sampled_from(PIECES), max_size=30),
    cuts=st.lists(st.integers(min_value=0, max_value=600), max_size=5),
)
def test_feed_data_gives_the_same_events(parts: list[bytes], cuts: list[int]) -> None:
    body = b"".join(parts)
    points = sorted({c % (len(body) + 1) for c in cuts})
    pieces = [body[a:b] for a, b in zip([0, *points], [*points, len(body)], strict=True)]
    assert run_data(SSEDecoder(), pieces) == kinds(run(LinesOnly(), pieces))


@settings(max_examples=300, deadline=None)
@given(
    events=st.lists(
        st.sampled_from([b"data: x\n\n", b"data: \xc3\xa9\n\n", b"data: a\ndata: b\n\n",
                         b": c\n\n", b"data:\n\n", b"data: \n\n", b"\n", b"data: \xc3\n\n",
                         b"event: e\ndata: y\n\n", b"id: 3\n", b"data: " + b"z" * 40 + b"\n\n"]),
        max_size=40,
    ),
    cut=st.integers(min_value=0, max_value=2000),
    limit=st.sampled_from([30, 1 << 20]),
)
def test_runs_of_plain_events_match_the_line_by_line_path(
    events: list[bytes], cut: int, limit: int
) -> None:
    body = b"data: first\n\n" + b"".join(events)
    cut %= len(body) + 1
    pieces = [body[:cut], body[cut:]]
    expected = run(LinesOnly(max_event_bytes=limit), pieces)
    assert run(SSEDecoder(max_event_bytes=limit), pieces) == expected
    assert run_data(SSEDecoder(max_event_bytes=limit), pieces) == kinds(expected)


def test_fast_path_keeps_id_and_retry_and_multi_line_events() -> None:
    body = b"retry: 7\nid: 9\n\ndata: a\n\nevent: e\ndata: b\ndata: c\n\n: note\n\ndata: d\n\n"
    events = run(SSEDecoder(), [body])
    assert events == run(LinesOnly(), [body])
    assert not isinstance(events, str)
    assert [(e.event, e.data, e.id, e.retry) for e in events] == [
        ("message", "a", "9", 7), ("e", "b\nc", "9", 7), ("message", "d", "9", 7),
    ]


def test_fast_path_still_enforces_the_size_limit() -> None:
    assert run(SSEDecoder(max_event_bytes=10), [b"data: 0123456789\n\n"]) == "error"
