"""create_stream_completion: one streamed chat completion as a cold Observable.

Each subscription is one HTTP request. Two models read it:

* **shared** (``scheduler=None``, `_Shared`): subscribing queues the request on the
  send pool (``_concurrency.pool``); after the headers the body's socket is handed to
  the shared reader (``_http.reactor``), which decodes each read into its deltas and
  queues them, together, on the stream's `SerialQueue`, drained by the delivery pool:
  every ``on_*`` call of one subscription in order, never concurrently. A stream whose
  queue holds `HIGH_WATER` values is paused (not read) until it is down to
  `LOW_WATER`. What the reader cannot own (TLS inside an https proxy's TLS, another
  Content-Encoding) is read on a thread of its own (``rxchat-stream``) and delivered
  the same way.
* **per attempt** (an explicit ``scheduler``, `_Reader`): a loop that runs on that
  scheduler feeds the bytes through the SSE and delta decoders and calls the observer
  directly (e.g. a ``TestScheduler`` in virtual time).

The rest of this docstring describes the per-attempt model; the shared one keeps the
same retry policy, timeouts and dispose semantics (see `_Shared`).

Each *attempt* is one scheduled action: the first with ``scheduler.schedule``, each
retry with ``scheduler.schedule_relative(wait, ...)`` (policy in ``_http/retry.py``). So
the waits between attempts run on the caller's scheduler, in virtual time under a
``TestScheduler``, and the pending retry is one disposable: disposing cancels it.

Disposing the subscription sets a stop flag and shuts the socket down from the
disposing thread (``subscribe_on`` could not do this: its dispose is queued behind the
blocked read), so the blocked read wakes at once, the loop ends, and nothing more is
emitted.

A stream that ends with ``data: [DONE]`` completes at once; the transport then reads
the rest of its body on this thread (briefly) so the connection can be reused.

Timeouts: connect and idle (silence between bytes) are the socket timeouts of the
request; the first-delta timeout is checked in the read loop on every chunk that
arrives, so keep-alive comments cannot extend it, and total silence is left to the
idle timeout. No timer thread is needed.
"""

from __future__ import annotations

import http.client
import logging
import os
import threading
import time
from collections.abc import Mapping
from typing import Any

import reactivex
from reactivex import Observable, abc
from reactivex.disposable import Disposable, SerialDisposable, SingleAssignmentDisposable
from reactivex.scheduler import TimeoutScheduler

from ._client import ChatClient, require_client
from ._concurrency.loop import deliver_on_loop, loop_of
from ._concurrency.pool import SerialQueue, delivery_pool, send_pool
from ._http.abort import AbortHandle
from ._http.chunked import ChunkedDecodeError
from ._http.pools import Draining, draining
from ._http.reactor import Body, reactor
from ._http.retry import retry_delay
from ._http.status import status_error
from ._http.transport import StreamResponse, post_stream, translate
from ._models import ChatCompletionParams, Message
from ._readloop import Emitter, EventFeed, ObserverError
from ._wire.messages import completion_messages
from ._wire.params import check_params
from .errors import APITimeoutError, RxChatError, StreamError

__all__ = ["create_stream_completion", "default_client"]

log = logging.getLogger("rxchat")

# The shared model's waits before a retry: a daemon thread per wait (threading.Timer)
# that only queues the next attempt on the send pool; cancelling a pending retry ends
# its thread at once (NewThreadScheduler's timed thread would linger until the due time).
_default_scheduler = TimeoutScheduler()
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
    params: ChatCompletionParams | Mapping[str, Any],
    *,
    client: ChatClient | None = None,
    scheduler: abc.SchedulerBase | None = None,
) -> Observable[Message]:
    """Stream one chat completion; emit each ``choices[i].delta`` as a ``Message``.

    Cold: nothing is sent until subscribe, and each subscription sends its own request
    with ``stream: true``.

    ```text
    params  ──subscribe──▶ POST /chat/completions
    deltas  ──m──m──m──m──|          ([DONE], or every choice finished)
    deltas  ──m──m──#                (StreamInterrupted: body cut off)
    ```

    Args:
        params: The request body, as for OpenAI: ``messages`` (dicts or
            ``ChatMessage``), ``model``, ``temperature`` and any other field, which is
            passed through unchanged.
        client: Where to send it; by default a client configured from the environment.
        scheduler: None (the default) for the shared model: the request is sent
            from a small pool, the body read by one shared reader thread with every
            other open stream, and the subscriber called from a small delivery pool
            (see "Which thread calls your subscriber" in the concepts page). A
            scheduler selects the per-attempt model instead: each attempt's whole
            read loop runs as one action on it, and the waits before retries are
            scheduled on it; with a ``reactivex.testing.TestScheduler`` the requests
            run synchronously inside virtual time, so retry timing can be asserted.
            Only this argument chooses:
            the scheduler a subscriber passes to ``subscribe`` (as ``await`` and some
            operators do) is not used, because the read blocks, and must not block an
            event loop or the caller's thread. When that scheduler is an asyncio
            scheduler, the values are handed to its loop thread-safely instead.

    Returns:
        A cold Observable of deltas. Disposing it aborts the request at once.

    Raises:
        TypeError: ``client`` is not a ``ChatClient``, or ``params`` or its
            ``messages`` has the wrong type (at the call, before any request).
        ConfigurationError: ``messages`` is missing or empty, or a message has no
            ``role``.
    """
    require_client(client, "create_stream_completion")
    check_params(params)

    def subscribe(
        observer: abc.ObserverBase[Message], scheduler_: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        def start(target: abc.ObserverBase[Message]) -> abc.DisposableBase:
            # Not ``scheduler_``: a blocking read must never run on the subscriber's
            # scheduler (an asyncio loop under ``await``, or the current thread).
            reader: _Reader
            if scheduler is None:
                reader = _Shared(params, client, target, _default_scheduler)
            else:
                reader = _Reader(params, client, target, scheduler)
            reader.start()
            return Disposable(reader.dispose)

        return deliver_on_loop(observer, loop_of(scheduler_), start)  # for ``await``

    return reactivex.create(subscribe)


class _Reader(Emitter):
    """One subscription: its attempts, stop flag, abort handle and pending action."""

    def __init__(
        self,
        params: ChatCompletionParams | Mapping[str, Any],
        client: ChatClient | None,
        observer: abc.ObserverBase[Message],
        scheduler: abc.SchedulerBase,
    ) -> None:
        super().__init__(observer)
        self._params = params
        self._client = client
        self._scheduler = scheduler
        self._attempts = 0
        self._handle = AbortHandle()
        # The first attempt and the pending retry are held apart: on a fast failure
        # (connection refused) the first attempt schedules its retry before
        # `start()` has stored the first action, and one SerialDisposable would then
        # dispose (cancel) that retry when `start()` stores the first action.
        self._first = SingleAssignmentDisposable()
        self._pending = SerialDisposable()
        self._deadline = float("inf")
        self._started = 0.0

    def start(self) -> None:
        self._first.disposable = self._scheduler.schedule(self._run_attempt)

    def dispose(self) -> None:
        self._stopped = True
        self._first.dispose()
        self._pending.dispose()
        self._handle.abort()

    def _run_attempt(self, _scheduler: abc.SchedulerBase, _state: Any = None) -> None:
        """One attempt; on a retryable failure, schedule the next one after its wait."""
        if self._stopped:
            return
        client: ChatClient | None = None
        try:
            client = self._client = self._client or default_client()
            self._attempts += 1
            try:
                self._attempt(client)
                return
            except RxChatError as exc:
                if self._stopped:
                    return
                delay = self._retry_after(exc, client)
            self._retry_later(delay)
        except RxChatError as exc:
            self._error(client.redact_error(exc) if client else exc)
        except ObserverError as failed:  # the subscriber's own bug: passed on as is
            self._error(failed.error)
        except Exception as exc:  # never raise out of the reader
            error = StreamError(f"Unexpected failure reading the stream: {exc!r}")
            self._error(client.redact_error(error) if client else error)

    def _retry_later(self, delay: float) -> None:
        self._pending.disposable = self._scheduler.schedule_relative(delay, self._run_attempt)

    def _retry_after(self, exc: RxChatError, client: ChatClient) -> float:
        """The wait before the next attempt.

        Raises:
            RxChatError: ``exc``, if it is not retried (its message then says how
                many attempts were made, when there were several).
        """
        delay, why = retry_delay(
            exc, self._attempts, client.max_retries, emitted=self._emitted
        )
        if delay is None:
            if why:
                exc.args = (f"{exc} ({why})", *exc.args[1:])
            raise exc
        log.info(
            "attempt %d of %d to %s failed (%s: %s); retrying in %.2f s",
            self._attempts, client.max_retries + 1, client.completions_url,
            type(exc).__name__, client.redact(str(exc)), delay,
        )
        return delay

    def _post(self, client: ChatClient) -> StreamResponse | None:
        """Send the request of one attempt: its response, or None if disposed first."""
        handle = self._handle = AbortHandle()
        if self._stopped:
            return None
        self._started = time.monotonic()
        limit = client.first_delta_timeout
        self._deadline = self._started + limit if limit is not None else float("inf")
        return post_stream(
            client.session,
            client.completions_url,
            client.build_body(self._params),
            client.build_headers(),
            client.timeout,
            handle,
        )

    def _is_event_stream(self, response: StreamResponse, client: ChatClient) -> bool:
        """Whether the response is an event stream to read; an error status raises,
        and a whole (not streamed) completion is emitted here.

        Raises:
            APIStatusError: The status is 400 or more (its subclass for the status).
        """
        if response.status_code >= 400:
            body = client.redact(response.read_text(keep_partial=True))
            raise status_error(
                response.status_code, body, response.headers, client.completions_url,
                key_source=client._key_source,
            )
        if response.content_type != "text/event-stream":
            self._read_whole_body(response)
            return False
        return True

    def _attempt(self, client: ChatClient) -> None:
        response = self._post(client)
        if response is None:
            return
        done = False
        try:
            if self._stopped:
                return
            if self._is_event_stream(response, client):
                done = self._read_events(
                    response.iter_bytes(), client.max_event_bytes, self._check_first_delta
                )
        except RxChatError as exc:
            self._log_end(response, type(exc).__name__)
            if self._stopped:
                return
            raise
        finally:
            keep = done and not self._stopped  # decided once: dispose may come now
            if not keep:
                response.close()
        if keep:  # [DONE]: complete now, then read the rest to keep the connection
            response.finish_after(lambda: self._end(response), client.session)
        else:
            self._end(response)

    def _end(self, response: StreamResponse) -> None:
        self._log_end(response, "disposed" if self._stopped else "completed")
        self._complete()

    def _check_first_delta(self) -> None:
        """Raise the first-delta timeout if it ran out (called per chunk received).

        Raises:
            APITimeoutError: No delta yet, and the deadline has passed.
        """
        if not self._emitted and time.monotonic() > self._deadline:
            limit = self._client.first_delta_timeout if self._client else None
            raise APITimeoutError(
                f"No delta arrived within the first-delta timeout ({limit:g} s) of "
                "sending the request; the server sent only keep-alive comments or "
                "nothing usable. The provider may be queueing or overloaded: retry, or "
                "raise ChatClient(first_delta_timeout=...)."
            )

    def _log_end(self, response: StreamResponse, outcome: str) -> None:
        if log.isEnabledFor(logging.DEBUG):
            now = time.monotonic()
            first = self._first_delta_at
            log.debug(
                "stream from %s %s after %.3f s (status %s, first delta %s)",
                response.url, outcome, now - self._started, response.status_code,
                f"at {first - self._started:.3f} s" if first is not None else "none",
            )

    def _read_whole_body(self, response: StreamResponse) -> None:
        """Accept a server that ignored ``stream: true`` and sent one JSON completion."""
        text = response.read_text(1 << 22)
        for message in completion_messages(text, response.content_type):
            self._next(message)

    def _error(self, error: Exception) -> None:
        if not self._stopped:
            self._stopped = True
            self._observer.on_error(error)

    def _complete(self) -> None:
        if not self._stopped:
            self._stopped = True
            self._observer.on_completed()


HIGH_WATER = 262_144
"""Bytes of body whose deltas wait for the subscriber, at which a stream stops being
read (its subscriber is behind); it is read again when they are down to `LOW_WATER`."""
LOW_WATER = 65_536


class _Shared(_Reader):
    """One subscription in the shared model: sent from the send pool, its body read by
    the shared reader, its notifications run in order by the delivery pool."""

    def __init__(
        self,
        params: ChatCompletionParams | Mapping[str, Any],
        client: ChatClient | None,
        observer: abc.ObserverBase[Message],
        scheduler: abc.SchedulerBase,
    ) -> None:
        super().__init__(params, client, observer, scheduler)
        deliver = self._on_next  # the subscriber's own function (see _readloop)
        self._queue = SerialQueue(
            delivery_pool(), deliver, self._observer_failed, self._resume, LOW_WATER
        )
        self._on_next = self._post_one
        self._terminal = False  # a terminal notification is queued
        self._body: Body | None = None
        self._feed: EventFeed | None = None
        self._response: StreamResponse | None = None
        self._draining: Draining | None = None
        self._finish_on_release = False

    # -- the subscription ------------------------------------------------------------

    def start(self) -> None:
        send_pool().submit(self._send)

    def _send(self) -> None:
        self._run_attempt(self._scheduler)

    def _retry_later(self, delay: float) -> None:
        def retry(_scheduler: abc.SchedulerBase, _state: Any = None) -> None:
            send_pool().submit(self._send)

        self._pending.disposable = self._scheduler.schedule_relative(delay, retry)

    def dispose(self) -> None:
        self._stopped = True
        self._queue.stop()
        self._pending.dispose()
        self._handle.abort()
        body = self._body
        if body is not None:
            reactor().cancel(body)

    # -- notifications, through the serial queue ------------------------------------

    def _post_one(self, message: Message) -> None:
        self._queue.values([message])

    def _error(self, error: Exception) -> None:
        if not self._stopped and not self._terminal:
            self._terminal = True
            deliver = super()._error  # the end itself, as in the per-attempt model
            self._queue.call(lambda: deliver(error))

    def _complete(self) -> None:
        if not self._stopped and not self._terminal:
            self._terminal = True
            self._queue.call(super()._complete)

    def _observer_failed(self, error: Exception) -> None:
        """The subscriber's ``on_next`` raised: the stream ends with that exception."""
        if self._stopped:
            return
        self._stopped = True
        self._terminal = True
        self._pending.dispose()
        self._handle.abort()
        body = self._body
        if body is not None:
            reactor().cancel(body)
        self._observer.on_error(error)

    def _resume(self) -> None:
        body = self._body
        if body is not None and not self._stopped:
            reactor().resume(body)

    # -- one attempt --------------------------------------------------------------------

    def _attempt(self, client: ChatClient) -> None:
        response = self._post(client)
        if response is None:
            return
        handed = False
        try:
            if self._stopped:
                return
            if self._is_event_stream(response, client):
                handed = True
                self._hand_over(response, client)
                return
        except RxChatError as exc:
            self._log_end(response, type(exc).__name__)
            if self._stopped:
                return
            raise
        finally:
            if not handed:
                response.close()
        self._end(response)

    def _hand_over(self, response: StreamResponse, client: ChatClient) -> None:
        """Give the body to the shared reader, or to a thread of its own when the
        reader cannot own its socket (TLS inside an https proxy's TLS, an encoding
        other than gzip or deflate)."""
        takeover = response.take_over()
        if takeover is None:
            thread = threading.Thread(
                target=self._read_on_thread, args=(response, client),
                name="rxchat-stream", daemon=True,
            )
            thread.start()
            return
        timeout = client.timeout
        read_timeout = timeout[1] if isinstance(timeout, tuple) else timeout
        self._feed = EventFeed(client.max_event_bytes)
        self._response = response
        body = self._body = Body(takeover, self, read_timeout, response.close)
        reactor().add(body)
        if self._stopped:  # disposed meanwhile: its cancel may have missed the body
            reactor().cancel(body)

    def _read_on_thread(self, response: StreamResponse, client: ChatClient) -> None:
        """The blocking read of one body on its own thread (what the reader cannot own)."""
        try:
            done = False
            try:
                done = self._read_events(
                    response.iter_bytes(), client.max_event_bytes, self._check_first_delta
                )
            except RxChatError as exc:
                self._log_end(response, type(exc).__name__)
                raise
            finally:
                keep = done and not self._stopped
                if not keep:
                    response.close()
            if keep:
                response.finish_after(lambda: self._end(response), client.session)
            else:
                self._end(response)
        except RxChatError as exc:
            self._body_failed(exc)
        except Exception as exc:  # never raise out of the reader
            self._error(client.redact_error(
                StreamError(f"Unexpected failure reading the stream: {exc!r}")
            ))

    def _body_failed(self, exc: RxChatError) -> None:
        """Reading the body failed: try again (before any delta) or pass it on."""
        if self._stopped:
            return
        client = self._client
        assert client is not None
        try:
            delay = self._retry_after(exc, client)
        except RxChatError as final:
            self._error(client.redact_error(final))
            return
        self._retry_later(delay)

    # -- what the shared reader reports (on its thread) ------------------------------

    def data(self, chunk: bytes) -> str:
        """Body bytes arrived: decode them and queue their deltas together."""
        feed = self._feed
        if self._stopped or feed is None:
            return "stop"
        out: list[Message] = []
        try:
            feed.feed(chunk, out)
            if not self._emitted:
                if out:
                    self._first_delta()
                else:
                    self._check_first_delta()
        except Exception as exc:
            if out:
                self._emitted = True
                self._queue.values(out, len(chunk))
            self._decode_failed(exc)
            return "stop"
        if out:
            self._queue.values(out, len(chunk))
        if feed.done:
            self._handle.release()  # aborts no longer touch the connection
            body = self._body
            if body is not None and body.body_end:
                # The body's end came with [DONE]: complete once the connection is
                # back in the pool, so that the next request finds it there.
                self._finish_on_release = True
                return "done"
            if self._client is not None:
                self._draining = draining(self._client.session)
                self._draining.enter(-id(self))
            self._finish()
            return "done"
        if self._queue.pause_over(HIGH_WATER):
            return "pause"
        return "more"

    def ended(self) -> None:
        """The body ended before ``[DONE]``: complete if every choice finished."""
        feed = self._feed
        if self._stopped or feed is None:
            return
        out: list[Message] = []
        try:
            feed.end(out)
        except Exception as exc:
            if out:
                self._emitted = True
                self._queue.values(out)
            self._decode_failed(exc)
            return
        if out:
            self._emitted = True
            self._queue.values(out)
        self._finish()

    def _decode_failed(self, exc: Exception) -> None:
        """Decoding raised: an rxchat error as it is, anything else (a bug) as a
        ``StreamError`` saying so; never out of the reader."""
        if not isinstance(exc, RxChatError):
            exc = StreamError(f"Unexpected failure reading the stream: {exc!r}")
        if self._response is not None:
            self._log_end(self._response, type(exc).__name__)
        if self._client is not None:
            exc = self._client.redact_error(exc)
        self._body_failed(exc)

    def failed(self, error: BaseException, *, timed_out: bool) -> None:
        """Reading failed: translated as the blocking read would have been."""
        if self._stopped:
            return
        response, client = self._response, self._client
        if response is None or client is None:
            return
        if isinstance(error, ChunkedDecodeError) or (
            type(error) is ConnectionError and not timed_out
        ):
            error = http.client.IncompleteRead(b"")
        exc = translate(error, response.url, reading=True, timeout=client.timeout)
        assert isinstance(exc, RxChatError)
        self._log_end(response, type(exc).__name__)
        self._body_failed(exc)

    def released(self, reused: bool) -> None:
        """The reader let go of the body."""
        if self._draining is not None:
            self._draining.leave(-id(self))
            self._draining = None
        if self._finish_on_release:
            self._finish()
        if not reused and self._response is not None and self._terminal:
            log.debug("closed the connection to %s after the stream", self._response.url)

    def _finish(self) -> None:
        if self._response is not None:
            self._log_end(self._response, "disposed" if self._stopped else "completed")
        self._complete()
