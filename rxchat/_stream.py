"""create_stream_completion: one streamed chat completion as a cold Observable.

Each subscription is one HTTP request, read by the "threaded SSE reader": a loop that
runs on the chosen scheduler (a new thread by default), feeds the bytes through the
SSE and delta decoders, and calls the observer directly. Every ``on_*`` call therefore
comes from that one loop, in order, never concurrently.

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

from ._client import ChatClient
from ._concurrency.loop import deliver_on_loop, loop_of
from ._http.abort import AbortHandle
from ._http.retry import retry_delay
from ._http.status import status_error
from ._http.transport import StreamResponse, post_stream
from ._models import ChatCompletionParams, Message
from ._readloop import Emitter, ObserverError
from ._wire.messages import completion_messages
from .errors import APITimeoutError, RxChatError, StreamError

__all__ = ["create_stream_completion", "default_client"]

log = logging.getLogger("rxchat")

# A daemon thread per scheduled action (threading.Timer): the first attempt starts at
# once, a retry after its wait, and cancelling a pending retry ends its thread at once
# (NewThreadScheduler's timed thread would linger until the due time).
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
        scheduler: Where each attempt's read loop runs and where the waits before
            retries are scheduled; by default a new daemon thread per attempt. With a
            ``reactivex.testing.TestScheduler`` the requests run synchronously inside
            virtual time, so retry timing can be asserted. Only this argument chooses:
            the scheduler a subscriber passes to ``subscribe`` (as ``await`` and some
            operators do) is not used, because the read blocks, and must not block an
            event loop or the caller's thread. When that scheduler is an asyncio
            scheduler, the values are handed to its loop thread-safely instead.

    Returns:
        A cold Observable of deltas. Disposing it aborts the request at once.
    """

    def subscribe(
        observer: abc.ObserverBase[Message], scheduler_: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        def start(target: abc.ObserverBase[Message]) -> abc.DisposableBase:
            # Not ``scheduler_``: a blocking read must never run on the subscriber's
            # scheduler (an asyncio loop under ``await``, or the current thread).
            reader = _Reader(params, client, target, scheduler or _default_scheduler)
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
            self._pending.disposable = self._scheduler.schedule_relative(
                delay, self._run_attempt
            )
        except RxChatError as exc:
            self._error(client.redact_error(exc) if client else exc)
        except ObserverError as failed:  # the subscriber's own bug: passed on as is
            self._error(failed.error)
        except Exception as exc:  # never raise out of the reader
            error = StreamError(f"Unexpected failure reading the stream: {exc!r}")
            self._error(client.redact_error(error) if client else error)

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

    def _attempt(self, client: ChatClient) -> None:
        handle = self._handle = AbortHandle()
        if self._stopped:
            return
        self._started = time.monotonic()
        limit = client.first_delta_timeout
        self._deadline = self._started + limit if limit is not None else float("inf")
        response = post_stream(
            client.session,
            client.completions_url,
            client.build_body(self._params),
            client.build_headers(),
            client.timeout,
            handle,
        )
        done = False
        try:
            if self._stopped:
                return
            if response.status_code >= 400:
                body = client.redact(response.read_text(keep_partial=True))
                raise status_error(
                    response.status_code, body, response.headers, client.completions_url,
                    key_source=client._key_source,
                )
            if response.content_type != "text/event-stream":
                self._read_whole_body(response)
            else:
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
