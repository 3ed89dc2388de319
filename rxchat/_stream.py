"""create_stream_completion: one streamed chat completion as a cold Observable.

Each subscription is one HTTP request, read by the "threaded SSE reader": a loop that
runs on the chosen scheduler (a new thread by default), feeds the bytes through the
SSE and delta decoders, and calls the observer directly. Every ``on_*`` call therefore
comes from that one loop, in order, never concurrently.

Disposing the subscription sets a stop flag and shuts the socket down from the
disposing thread (``subscribe_on`` could not do this: its dispose is queued behind the
blocked read), so the blocked read wakes at once, the loop ends, and nothing more is
emitted.
"""

from __future__ import annotations

import json
import os
import random
import threading
from typing import Any

import reactivex
from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, Disposable
from reactivex.scheduler import NewThreadScheduler

from ._client import ChatClient, status_error
from ._deltas import DeltaDecoder
from ._models import ChatCompletionParams, Message
from ._sse import SSEDecoder
from ._transport import AbortHandle, StreamResponse, post_stream
from .errors import (
    APIConnectionError,
    APIStatusError,
    RateLimitError,
    RxChatError,
    StreamError,
)

__all__ = ["create_stream_completion", "default_client"]

MAX_RETRY_AFTER = 60.0
"""Longest ``Retry-After`` honoured, in seconds; longer waits end the retries."""

_RETRY_STATUSES = frozenset({408, 409, 429})
_default_scheduler = NewThreadScheduler()
_default_lock = threading.Lock()
_default: tuple[tuple[str | None, ...], ChatClient] | None = None


def default_client() -> ChatClient:
    """The shared client built from the environment (rebuilt if the environment changes).

    Raises:
        ConfigurationError: The environment configures an unusable base URL.
    """
    global _default
    names = ("RXCHAT_BASE_URL", "RXCHAT_API_KEY", "SILICONFLOW_API_KEY", "RXCHAT_MODEL")
    key = tuple(os.environ.get(n) for n in names)
    with _default_lock:
        if _default is None or _default[0] != key:
            _default = (key, ChatClient())
        return _default[1]


def create_stream_completion(
    params: ChatCompletionParams,
    *,
    client: ChatClient | None = None,
    scheduler: abc.SchedulerBase | None = None,
) -> Observable[Message]:
    """Stream one chat completion; emit each ``choices[i].delta`` as a ``Message``.

    Cold: nothing is sent until subscribe, and each subscription sends its own request
    with ``stream: true``. ::

        params  ──subscribe──▶ POST /chat/completions
        deltas  ──m──m──m──m──|          ([DONE], or every choice finished)
        deltas  ──m──m──#                (StreamInterrupted: body cut off)

    Args:
        params: The request body, as for OpenAI: ``messages`` (dicts or
            ``ChatMessage``), ``model``, ``temperature`` and any other field, which is
            passed through unchanged.
        client: Where to send it; by default a client configured from the environment.
        scheduler: Where the reader loop runs; by default a new thread per
            subscription.

    Returns:
        A cold Observable of deltas. Disposing it aborts the request at once.
    """

    def subscribe(
        observer: abc.ObserverBase[Message], scheduler_: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        reader = _Reader(params, client, observer)
        chosen = scheduler or scheduler_ or _default_scheduler
        scheduled = chosen.schedule(lambda _s, _t: reader.run())
        return CompositeDisposable(Disposable(reader.dispose), scheduled)

    return reactivex.create(subscribe)


class _Reader:
    """The per-subscription read loop, with its stop flag and abort handle."""

    def __init__(
        self,
        params: ChatCompletionParams,
        client: ChatClient | None,
        observer: abc.ObserverBase[Message],
    ) -> None:
        self._params = params
        self._client = client
        self._observer = observer
        self._stopped = False
        self._emitted = False
        self._handle = AbortHandle()
        self._wake = threading.Event()

    def dispose(self) -> None:
        self._stopped = True
        self._wake.set()
        self._handle.abort()

    def run(self) -> None:
        client: ChatClient | None = None
        try:
            client = self._client or default_client()
            attempts = 0
            while not self._stopped:
                attempts += 1
                try:
                    self._attempt(client)
                    return
                except RxChatError as exc:
                    delay = self._retry_delay(exc, attempts, client.max_retries)
                    if delay is None:
                        if attempts > 1:
                            exc.args = (f"{exc} (gave up after {attempts} attempts)",)
                        raise
                if self._wake.wait(delay):
                    return
        except RxChatError as exc:
            self._error(client.redact_error(exc) if client else exc)
        except Exception as exc:  # never raise out of the reader
            error = StreamError(f"Unexpected failure reading the stream: {exc!r}")
            self._error(client.redact_error(error) if client else error)

    def _retry_delay(self, exc: RxChatError, attempts: int, max_retries: int) -> float | None:
        if self._emitted or self._stopped or attempts > max_retries:
            return None
        if isinstance(exc, APIStatusError):
            if exc.status_code not in _RETRY_STATUSES and exc.status_code < 500:
                return None
        elif not isinstance(exc, APIConnectionError):
            return None
        if isinstance(exc, RateLimitError) and exc.retry_after is not None:
            return exc.retry_after if exc.retry_after <= MAX_RETRY_AFTER else None
        backoff = min(0.5 * 2.0 ** (attempts - 1), 8.0)
        return backoff * (1 - 0.25 * random.random())

    def _attempt(self, client: ChatClient) -> None:
        handle = self._handle = AbortHandle()
        if self._stopped:
            return
        response = post_stream(
            client.session,
            client.completions_url,
            client.build_body(self._params),
            client.build_headers(),
            client.timeout,
            handle,
        )
        try:
            if self._stopped:
                return
            if response.status_code >= 400:
                body = client.redact(response.read_text())
                raise status_error(
                    response.status_code, body, response.headers, client.completions_url
                )
            if response.content_type != "text/event-stream":
                self._read_whole_body(response)
            else:
                self._read_events(response, client.max_event_bytes)
        except RxChatError:
            if self._stopped:
                return
            raise
        finally:
            response.close()
        self._complete()

    def _read_events(self, response: StreamResponse, max_event_bytes: int) -> None:
        sse = SSEDecoder(max_event_bytes)
        deltas = DeltaDecoder()
        for chunk in response.iter_bytes():
            if self._stopped:
                return
            for event in sse.feed(chunk):
                self._emit_event(deltas, event)
                if deltas.done or self._stopped:
                    return
        for event in sse.end():
            self._emit_event(deltas, event)
        deltas.check_end()

    def _emit_event(self, deltas: DeltaDecoder, event: Any) -> None:
        messages, error = deltas.decode(event)
        for message in messages:
            self._next(message)
        if error is not None:
            raise error

    def _read_whole_body(self, response: StreamResponse) -> None:
        """Accept a server that ignored ``stream: true`` and sent one JSON completion."""
        text = response.read_text(1 << 22)
        try:
            payload = json.loads(text)
        except ValueError:
            payload = None
        choices = payload.get("choices") if isinstance(payload, dict) else None
        if not isinstance(choices, list) or not choices:
            raise StreamError(
                f"Expected an event stream (text/event-stream) but got "
                f"{response.content_type or 'no Content-Type'}: {text[:200]!r}. Check "
                "that base_url points at an OpenAI-compatible /v1 endpoint."
            )
        for i, choice in enumerate(choices):
            message = dict(choice.get("message") or {})
            message.update(index=choice.get("index", i), finish_reason=choice.get("finish_reason"))
            if i == len(choices) - 1 and isinstance(payload, dict):
                message["usage"] = payload.get("usage")
            self._next(Message.from_dict(message))

    def _next(self, message: Message) -> None:
        if not self._stopped:
            self._emitted = True
            self._observer.on_next(message)

    def _error(self, error: Exception) -> None:
        if not self._stopped:
            self._stopped = True
            self._observer.on_error(error)

    def _complete(self) -> None:
        if not self._stopped:
            self._stopped = True
            self._observer.on_completed()
