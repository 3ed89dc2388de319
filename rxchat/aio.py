"""asyncio: Observables as async iterators, and one-call streaming and completion.

```text
reader thread ──on_next──▶ Channel (≤ maxsize waiting) ──▶ async for, on the loop
     ▲ waits while full: the socket is not read,           │ break / async with exit /
     │ so TCP pushes back on the server                     │ task cancelled / GC /
     └──────────── dispose: socket closed, turn cancelled ◀─┘ loop shut down
```

* `iterate(observable)` is an async iterator and an async context manager. Values
  arrive on the producer's thread and wait in a bounded channel; the loop only takes
  them (see `rxchat._concurrency.channel`).
* `stream(params)` iterates `create_stream_completion(params)`; `await complete(params)`
  is the final message.
* `await observable` works for rxchat's Observables and operators without `observe_on`:
  they hand their values to the awaiting loop thread-safely (see `rxchat._concurrency.loop`).

When the subscription ends early: leaving an `async with` block, `aclose()`, or
cancelling the task that waits for a value, disposes it at once. An iterator dropped
after breaking out of `async for` is disposed when it is garbage-collected (at once in
CPython when nothing else holds it), and one still held when `asyncio.run` finishes is
disposed as the loop shuts down (its async generators are closed then).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable
from types import TracebackType
from typing import Any, Generic, TypeVar

from reactivex import Observable

from ._client import ChatClient
from ._concurrency import channel as _channel
from ._concurrency.channel import Channel
from ._models import ChatCompletionParams, Message
from ._stream import create_stream_completion
from .errors import ConfigurationError
from .operators import final_message

_T = TypeVar("_T")

__all__ = ["ObservableIterator", "complete", "iterate", "stream"]


def iterate(observable: Observable[_T], *, maxsize: int = 1024) -> ObservableIterator[_T]:
    """Iterate an Observable's values with `async for`; dispose it when done or left.

    ```python
    async with aio.iterate(session.ask("hi").pipe(rxops.content())) as pieces:
        async for text in pieces:
            print(text, end="")
    ```

    Subscribes on the first `async for` step or on entering `async with`, on the
    loop's thread. The Observable's error is raised by `async for`; its completion
    ends the loop.

    Args:
        observable: Any Observable; its values may arrive on any thread.
        maxsize: How many values may wait for the consumer; then the producing thread
            waits (the loop never does) and nothing is dropped. A value emitted on the
            loop's own thread, or by a `ChatSession`'s thread (which serves the whole
            session), never waits, and is queued beyond this.

    Returns:
        An async iterator that is also an async context manager.

    Raises:
        ConfigurationError: `maxsize` is less than 1.
    """
    return ObservableIterator(observable, maxsize)


def stream(
    params: ChatCompletionParams, *, client: ChatClient | None = None, maxsize: int = 1024
) -> ObservableIterator[Message]:
    """Iterate the deltas of one streamed chat completion with `async for`.

    The same as `iterate(create_stream_completion(params, client=client))`: leaving
    the loop early closes the connection.

    Args:
        params: The request body, as for `create_stream_completion`.
        client: Where to send it; by default a client configured from the environment.
        maxsize: How many deltas may wait before the reader stops reading.

    Returns:
        An async iterator of deltas that is also an async context manager.
    """
    return iterate(create_stream_completion(params, client=client), maxsize=maxsize)


async def complete(params: ChatCompletionParams, *, client: ChatClient | None = None) -> Message:
    """Send one chat completion and return the whole reply as one message.

    Streamed like any other request (its deltas are merged by `final_message()`);
    cancelling the awaiting task closes the connection. With `n > 1` choices this is
    the last choice's message: iterate `final_message()` to get each one.

    Args:
        params: The request body, as for `create_stream_completion`.
        client: Where to send it; by default a client configured from the environment.

    Returns:
        The final message: content and reasoning joined, tool calls merged,
        `finish_reason` and `usage` kept.

    Raises:
        RxChatError: The request failed (the subclass says how).
    """
    return await create_stream_completion(params, client=client).pipe(final_message())


class ObservableIterator(AsyncIterator[_T], Generic[_T]):
    """The async iterator returned by `iterate`; also an async context manager.

    Args:
        observable: The Observable to subscribe to (on first use).
        maxsize: How many values may wait before the producing thread waits.

    Raises:
        ConfigurationError: `maxsize` is less than 1.
    """

    def __init__(self, observable: Observable[_T], maxsize: int = 1024) -> None:
        self._channel: Channel[_T] | None = None
        self._values: AsyncGenerator[_T, None] | None = None
        self._closed = False
        if maxsize < 1:
            raise ConfigurationError(
                f"maxsize must be at least 1 (got {maxsize}): it is how many values may "
                "wait for the consumer before the producer waits."
            )
        self._observable, self._maxsize = observable, maxsize

    def _open(self) -> AsyncGenerator[_T, None] | None:
        """Subscribe (once), on the loop's thread; the generator that takes the values.

        The generator is started at once (to a first `yield` that awaits nothing), so
        the running loop knows it from then on and closes it, disposing the
        subscription, when it shuts down: also for an iterator entered with
        `__aenter__` that never reached `async for` and was never exited.
        """
        if self._values is None and not self._closed:
            channel = self._channel = Channel(asyncio.get_running_loop(), self._maxsize)
            # A generator (not self) owns the loop: no reference cycle, so a dropped
            # iterator is collected at once.
            self._values = _iter_channel(channel)
            _prime(self._values)
            channel.subscribe(self._observable)
        return self._values

    def __aiter__(self) -> ObservableIterator[_T]:
        return self

    def __anext__(self) -> Awaitable[_T]:
        """The next value.

        Returns:
            An awaitable of the next value.

        Raises:
            StopAsyncIteration: The Observable completed, or the iterator was closed.
        """
        return self._step(self._open())

    async def _step(self, values: AsyncGenerator[_T, None] | None) -> _T:
        # A coroutine of self's: the iterator stays alive while the step is awaited,
        # so `await anext(aio.stream(p))` gets the first value (a temporary iterator
        # collected meanwhile would close its channel and end the step empty).
        if values is None:
            raise StopAsyncIteration
        return await values.__anext__()

    async def __aenter__(self) -> ObservableIterator[_T]:
        self._open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Dispose the subscription (closing a stream's socket, cancelling a turn)."""
        self._close()
        if self._values is not None:
            await self._values.aclose()

    def _close(self) -> None:
        self._closed = True
        if self._channel is not None:
            self._channel.close()

    def __del__(self) -> None:
        self._close()
        if self._values is not None:
            _close_now(self._values)


_STARTED: Any = object()


async def _iter_channel(channel: Channel[_T]) -> AsyncGenerator[_T, None]:
    try:
        yield _STARTED  # taken by `_prime`, never by the consumer
        while True:
            item = channel.take()
            if isinstance(item, asyncio.Future):
                await item  # cancelled: the finally below disposes
                continue
            kind, value = item
            if kind == _channel.NEXT:
                yield value
            elif kind == _channel.COMPLETED:
                return
            else:
                raise value
    finally:
        channel.close()


def _prime(values: AsyncGenerator[Any, None]) -> None:
    """Run a new generator to its first `yield`, on the loop's thread, without awaiting.

    Its first step registers it with the running loop (`sys.set_asyncgen_hooks`), which
    closes every generator it knows when it shuts down (`shutdown_asyncgens`).
    """
    step = values.asend(None)
    try:
        step.send(None)
    except StopIteration:
        return
    step.close()  # pragma: no cover - the first step awaits nothing


def _close_now(values: AsyncGenerator[object, None]) -> None:
    """Close a suspended async generator without a loop (its `finally` never awaits)."""
    closing = values.aclose()
    try:
        closing.send(None)
    except StopIteration:
        return
    except BaseException:  # running in another task: the closed channel ends it
        return
    closing.close()
