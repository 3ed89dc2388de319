"""A pure, incremental Server-Sent Events decoder: bytes in, events out.

It implements the WHATWG HTML "Interpreting an event stream" algorithm
(https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation)
and nothing else: no I/O, no threads, no JSON. Feeding the same bytes split at any
boundaries gives the same events, because

* lines end at ``\\r\\n``, ``\\r`` or ``\\n`` (9.2.5), and a ``\\r`` that ends one chunk
  is a complete line ending whose ``\\n`` partner, if it comes first in the next chunk,
  is skipped: CR-only streams dispatch without waiting for more bytes;
* bytes are decoded per line, after splitting, so a UTF-8 character cut between two
  reads is joined before it is decoded;
* a leading byte order mark is dropped (9.2.6: "One leading U+FEFF BOM character must
  be ignored if any are present").

At end of body, the spec drops an event that was not ended by a blank line. Recorded
providers do end streams with an event whose last line ends with a newline but no blank
line follows; `SSEDecoder.end` dispatches such an event (the rule proposed in
openai-node#2725) and still drops one whose last line was cut off mid-line.

sseclient-py, the usual choice, fails several of these points (it dispatches a cut-off
trailing event, keeps the BOM, and misses ``\\n\\r\\n`` event boundaries), so rxchat
carries this decoder instead; ``tests/wire/test_sse.py`` shows the differences.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, cast

from ..errors import StreamError

__all__ = ["DEFAULT_MAX_EVENT_BYTES", "SSEDecoder", "ServerSentEvent"]

DEFAULT_MAX_EVENT_BYTES = 1 << 20
"""Largest event (all its lines together) accepted before a StreamError: 1 MiB."""

@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    """One dispatched event: its type, data (lines joined by ``\\n``), id and retry."""

    event: str = "message"
    data: str = ""
    id: str | None = None
    retry: int | None = None


_set_type, _set_data, _set_id, _set_retry = (
    ServerSentEvent.__dict__[name].__set__ for name in ("event", "data", "id", "retry")
)


def new_event(data: str, last_id: str | None, retry: int | None) -> ServerSentEvent:
    """``ServerSentEvent("message", data, last_id, retry)``, twice as fast (one per
    event): the slots are written through their descriptors, bypassing the frozen
    dataclass ``__init__``; the value is the same."""
    event: ServerSentEvent = object.__new__(ServerSentEvent)
    _set_type(event, "message")
    _set_data(event, data)
    _set_id(event, last_id)
    _set_retry(event, retry)
    return event


def plain_datas(blocks: bytes) -> list[str] | None:
    """The data of each event in ``blocks`` (whole ``\\n``-only events), if every one
    is a single ``data: `` line of UTF-8; else None."""
    if blocks[:6] != b"data: ":
        return None
    try:
        text = blocks.decode("utf-8")
    except UnicodeDecodeError:
        return None
    datas = text.split("\n\ndata: ")  # as text[6:-2].split(...): no separator can
    datas[0] = datas[0][6:]  # start in the leading "data: " or end in the final "\n\n"
    datas[-1] = datas[-1][:-2]
    return None if "\n" in "".join(datas) else datas  # no event has a second line


_LINE_END = re.compile(rb"\r\n|\r|\n")
_BOM = "\ufeff"


class SSEDecoder:
    """Turns the bytes of an event stream into `ServerSentEvent` values.

    Args:
        max_event_bytes: Largest event, or unterminated line, to hold in memory. A
            stream that exceeds it raises `StreamError`, so an
            endless line cannot exhaust memory.
    """

    def __init__(self, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> None:
        self._max = max_event_bytes
        self._partial: list[bytes] = []
        self._partial_size = 0
        self._skip_lf = False
        self._first_line = True
        self._event_type = ""
        self._data: list[str] = []
        self._event_size = 0
        self._last_id: str | None = None
        self._retry: int | None = None
        self._error: StreamError | None = None
        self._dispatched = False  # any event yet (set per chunk on the fast path)
        self._stray: str | None = None  # the first line that is no SSE field

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Decode the next bytes of the stream.

        Nothing decoded is lost to bad input: when these bytes hold complete events
        before a bad line, those events are returned and the error is raised by the
        next call (`feed`, `end` or `check`).

        Args:
            chunk: Any number of bytes, split anywhere.

        Returns:
            The events completed by these bytes, in order.

        Raises:
            StreamError: An event is over the size limit or a line is not UTF-8 (in
                these bytes with no event before it, or in earlier ones).
        """
        return cast("list[ServerSentEvent]", self._feed_checked(chunk, False))

    def feed_data(self, chunk: bytes) -> list[ServerSentEvent | str]:
        """Like `feed`, but a plain event comes as its data alone (a ``str``).

        A plain event (one ``data: `` line, then a blank line: nearly every event of a
        chat stream) is a ``message`` with the decoder's current id and retry.

        Args:
            chunk: Any number of bytes, split anywhere.

        Returns:
            The events completed by these bytes, in order; plain ones as their data.

        Raises:
            StreamError: As for `feed`.
        """
        return self._feed_checked(chunk, True)

    def _feed_checked(self, chunk: bytes, plain: bool) -> list[ServerSentEvent | str]:
        self.check()
        events: list[ServerSentEvent | str] = []
        if chunk:
            try:
                self._feed(chunk, events, plain)
            except StreamError as exc:
                self._error = exc  # the decoder cannot resume after bad input
                if not events:
                    raise
        return events  # the events before the bad line go out first

    def check(self) -> None:
        """Raise the error found after the events the last `feed` returned.

        Raises:
            StreamError: The bad input `feed` held back; raised again on every
                later call, since the decoder cannot resume after it.
        """
        if self._error is not None:
            raise self._error

    def _feed(self, chunk: bytes, events: list[ServerSentEvent | str], plain: bool) -> None:
        """Append the events ``chunk`` completes to ``events``, on the fastest path."""
        if b"\r" in chunk or self._skip_lf:
            self._feed_lines(chunk, events)
            return
        cut = chunk.find(b"\n\n") + 2
        if cut < 2:
            self._feed_lines(chunk, events)
            return
        if self._partial and not (self._data or self._event_type or self._first_line):
            # The first line of an event began in earlier bytes: join them, so that
            # the event can go with the others (the usual case between reads).
            chunk = b"".join(self._partial) + chunk
            self._partial.clear()
            self._partial_size = 0
        elif self._data or self._event_type or self._first_line:
            # Finish the event in progress (and look for a BOM) the general way; the
            # blank line at ``cut`` leaves the decoder at an event boundary.
            self._feed_lines(chunk[:cut], events)
            chunk = chunk[cut:]
        self._feed_blocks(chunk, events, plain)

    def _feed_lines(self, chunk: bytes, events: list[Any]) -> None:
        """The general path: any line endings, any state (9.2.5, line by line)."""
        if self._skip_lf:
            self._skip_lf = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
                if not chunk:
                    return
        if b"\n" not in chunk and b"\r" not in chunk:
            self._partial.append(chunk)
            self._partial_size += len(chunk)
            self._check_size(self._partial_size)
            return
        if self._partial:
            chunk = b"".join(self._partial) + chunk
            self._partial.clear()
            self._partial_size = 0
        lines = _LINE_END.split(chunk) if b"\r" in chunk else chunk.split(b"\n")
        rest = lines.pop()
        for line in lines:
            event = self._process_line(line)
            if event is not None:
                events.append(event)
        if rest:
            self._partial.append(rest)
            self._partial_size = len(rest)
            self._check_size(len(rest))
        elif chunk[-1:] == b"\r":
            self._skip_lf = True

    def _feed_blocks(self, chunk: bytes, events: list[Any], plain: bool) -> None:
        """The fast path, for ``\\n``-only bytes that start at an event boundary.

        Every ``\\n\\n`` then ends an event. When every event up to the last
        boundary is a single ``data: `` line (the usual case), they are split off in
        one piece; otherwise each block that is a single ``data: `` line is that
        event's data and any other goes line by line. The bytes after the last
        boundary go through `_feed_lines`. Same events as the general path,
        with the same limits and errors.
        """
        cut = chunk.rfind(b"\n\n") + 2
        if cut < 2:  # no boundary left
            if chunk:
                self._feed_lines(chunk, events)
            return
        datas = plain_datas(chunk[:cut]) if cut <= self._max else None
        if datas is not None:
            self._dispatched = True
            if plain:
                events += datas
            else:
                last_id, retry = self._last_id, self._retry
                events += [new_event(data, last_id, retry) for data in datas]
        else:
            for block in chunk[: cut - 2].split(b"\n\n"):
                self._feed_block(block, events, plain)
        if cut < len(chunk):
            self._feed_lines(chunk[cut:], events)

    def _feed_block(self, block: bytes, events: list[Any], plain: bool) -> None:
        """One block of `_feed_blocks` (the bytes between two boundaries)."""
        if block[:6] == b"data: " and b"\n" not in block and len(block) <= self._max:
            try:
                data = block[6:].decode("utf-8")
            except UnicodeDecodeError:
                pass  # the general path below raises the StreamError
            else:
                self._dispatched = True
                events.append(data if plain else new_event(data, self._last_id, self._retry))
                return
        for line in block.split(b"\n"):
            event = self._process_line(line)
            if event is not None:
                events.append(event)
        event = self._dispatch()
        if event is not None:
            events.append(event)

    def end(self) -> list[ServerSentEvent]:
        """Signal the end of the body.

        Returns:
            The pending event, if its last line was complete (see the module notes);
            an event cut off mid-line is dropped.

        Raises:
            StreamError: The bad input the last `feed` held back; or the body held
                no event at all but other text (an error page or a JSON error body
                served as ``text/event-stream``), quoted from its start.
        """
        self.check()
        if not self._dispatched and not self._data:
            self._check_stray()
        cut_off = bool(self._partial)
        self._partial.clear()
        self._partial_size = 0
        if cut_off or not self._data:
            self._reset_event()
            return []
        event = self._dispatch()
        return [event] if event is not None else []

    @property
    def has_pending(self) -> bool:
        """Whether bytes of an undispatched event are held."""
        return bool(self._partial or self._data)

    def _check_size(self, size: int) -> None:
        if self._event_size + size > self._max:
            raise StreamError(
                f"An event in the stream is larger than {self._max} bytes; the server "
                "is sending something that is not a chat completion stream. Raise "
                "max_event_bytes if such events are expected."
            )

    def _process_line(self, raw: bytes) -> ServerSentEvent | None:
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise StreamError(
                f"The stream is not valid UTF-8 ({exc.reason} at byte {exc.start} of "
                f"line {raw[:80]!r}); the server or a proxy corrupted the response."
            ) from None
        if self._first_line:
            self._first_line = False
            if line.startswith(_BOM):
                line = line[1:]
        if not line:
            return self._dispatch()
        if line[0] == ":":
            return None
        field, sep, value = line.partition(":")
        if sep and value[:1] == " ":
            value = value[1:]
        if field == "data":
            self._event_size += len(raw)
            self._check_size(0)
            self._data.append(value)
        elif field == "event":
            self._event_type = value
        elif field == "id":
            if "\0" not in value:
                self._last_id = value
        elif field == "retry" and value.isascii() and value.isdigit():
            self._retry = int(value)
        elif field not in ("event", "id", "retry") and not self._dispatched:
            stray = self._stray
            if stray is None or len(stray) < 200:  # the start of the body is enough
                self._stray = (line if stray is None else f"{stray}\n{line}")[:400]
        return None

    def _check_stray(self) -> None:
        """Raise if text that is no event arrived, and no event did.

        Raises:
            StreamError: Quoting the start of that text.
        """
        text = self._stray
        if text is None and self._partial:  # one line with no line ending at all
            text = b"".join(self._partial)[:400].decode("utf-8", "replace").lstrip(_BOM)
            if text[:1] == ":" or text.partition(":")[0] in ("data", "event", "id", "retry"):
                return  # an event cut off before its first line ended: interrupted
        if not text or not text.strip():
            return
        start = text.strip()[:200]
        raise StreamError(
            f"The server answered with an event stream (text/event-stream) that holds "
            f"no events, only this text: {start!r}. It is an error page or an error "
            "message, not a chat completion; check base_url, the model and the "
            "server's logs."
        )

    def _dispatch(self) -> ServerSentEvent | None:
        if not self._data:
            self._reset_event()
            return None
        self._dispatched = True
        event = ServerSentEvent(
            event=self._event_type or "message",
            data="\n".join(self._data),
            id=self._last_id,
            retry=self._retry,
        )
        self._reset_event()
        return event

    def _reset_event(self) -> None:
        self._event_type = ""
        self._data = []
        self._event_size = 0
