"""The read loop of one stream: bytes in, ``on_next`` calls out, in order.

It is the only place rxchat spends time per delta, so the common event takes a short
path: the SSE decoder hands over the data of a plain event as a string
(``SSEDecoder.feed_data``), the delta decoder turns a chunk of the common shape into
its ``Message`` straight away (``DeltaDecoder.common_delta``), and the observer is
called from this loop. Every other event goes the general way (``DeltaDecoder.decode``),
which gives the same deltas (``tests/wire/test_deltas_fast.py`` holds the two to each other;
``tests/contract/test_shared_streams.py`` runs recorded provider streams split at every byte).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from reactivex import abc

from ._concurrency.rxinternals import subscriber_function
from ._models import Message
from ._wire.deltas import DeltaDecoder
from ._wire.sse import ServerSentEvent, SSEDecoder

__all__ = ["Emitter", "EventFeed", "ObserverError"]


class ObserverError(Exception):
    """The observer's ``on_next`` raised: the stream ends with that very exception
    (as ``reactivex.from_iterable`` does), not with an rxchat error."""

    def __init__(self, error: Exception) -> None:
        super().__init__(error)
        self.error = error


class Emitter:
    """Passes the deltas of one subscription to its observer until stopped.

    Args:
        observer: The subscriber.
    """

    def __init__(self, observer: abc.ObserverBase[Message]) -> None:
        self._observer = observer
        self._on_next = subscriber_function(observer)
        self._stopped = False
        self._emitted = False
        self._first_delta_at: float | None = None

    def _read_events(
        self, chunks: Iterable[bytes], max_event_bytes: int, tick: Callable[[], None]
    ) -> bool:
        """Decode and emit the events of a body until it ends, ``[DONE]`` or a stop.

        Args:
            chunks: The body, as it arrives.
            max_event_bytes: The SSE decoder's event size limit.
            tick: Called after each piece of the body until the first delta was
                emitted (the first-delta timeout).

        Returns:
            Whether the stream ended with ``[DONE]`` (its connection may be reused).

        Raises:
            RxChatError: The stream is malformed, reports an error, or was cut off.
            ObserverError: The observer's ``on_next`` raised.
        """
        sse = SSEDecoder(max_event_bytes)
        deltas = DeltaDecoder()
        common = deltas.common_delta
        on_next = self._on_next
        emitted = self._emitted
        for chunk in chunks:
            for event in sse.feed_data(chunk):
                if self._stopped:
                    return False
                if type(event) is str and (message := common(event)) is not None:
                    if not emitted:
                        self._first_delta()
                        emitted = True
                    try:
                        on_next(message)
                    except Exception as exc:
                        raise ObserverError(exc) from exc
                    continue
                self._emit_event(deltas, event)
                emitted = self._emitted
                if deltas.done or self._stopped:
                    return deltas.done
            if self._stopped:
                return False
            sse.check()  # bad bytes after this chunk's good events: now, not later
            if not emitted:
                tick()
        for event in sse.end():
            self._emit_event(deltas, event)
        deltas.check_end()
        return False

    def _emit_event(self, deltas: DeltaDecoder, event: ServerSentEvent | str) -> None:
        if not (event if isinstance(event, str) else event.data).strip():
            return  # a bare ``data`` line dispatches an empty event: nothing to decode
        if isinstance(event, str):
            messages, error = deltas.decode_data(event)
        else:
            messages, error = deltas.decode(event)
        for message in messages:
            self._next(message)
        if error is not None:
            raise error

    def _first_delta(self) -> None:
        self._emitted = True
        self._first_delta_at = time.monotonic()

    def _next(self, message: Message) -> None:
        if not self._stopped:
            if not self._emitted:
                self._first_delta()
            try:
                self._on_next(message)
            except Exception as exc:
                raise ObserverError(exc) from exc


class EventFeed:
    """The decoding of one body without a loop: bytes in, the deltas they finish out.

    The shared reader (``rxchat._http.reactor``) feeds each read here and hands the
    deltas of that read to the stream's delivery queue together. Same decoders and the
    same short path as `Emitter._read_events`.

    Args:
        max_event_bytes: The SSE decoder's event size limit.
    """

    def __init__(self, max_event_bytes: int) -> None:
        self._sse = SSEDecoder(max_event_bytes)
        self._deltas = DeltaDecoder()
        self.done = False

    def feed(self, chunk: bytes, out: list[Message]) -> None:
        """Decode ``chunk``; append its deltas to ``out`` (also when it then raises).

        Sets `done` at ``[DONE]`` (what follows is ignored).

        Raises:
            RxChatError: The stream is malformed or reports an error.
        """
        deltas = self._deltas
        common = deltas.common_delta
        for event in self._sse.feed_data(chunk):
            if type(event) is str and (message := common(event)) is not None:
                out.append(message)
                continue
            self._general(event, out)
            if deltas.done:
                self.done = True
                return
        self._sse.check()

    def end(self, out: list[Message]) -> None:
        """The body ended: decode what is left.

        Raises:
            RxChatError: The stream is malformed, reports an error, or was cut off.
        """
        for event in self._sse.end():
            self._general(event, out)
            if self._deltas.done:
                self.done = True
                return
        self._deltas.check_end()

    def _general(self, event: ServerSentEvent | str, out: list[Message]) -> None:
        if not (event if isinstance(event, str) else event.data).strip():
            return
        if isinstance(event, str):
            messages, error = self._deltas.decode_data(event)
        else:
            messages, error = self._deltas.decode(event)
        out.extend(messages)
        if error is not None:
            raise error
