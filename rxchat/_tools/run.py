"""Running one tool call: approval, then the tool, each user code, off the session's thread.

```text
RunTool ─▶ worker thread: approve(call) ──▶ bool, awaitable or Observable of bool
                │ yes                         (no: "the user declined")
                ▼
           worker thread: tool(**arguments) ─▶ value | awaitable | Observable (last value)
                ▼
           done(text, error): the session posts it to its mailbox
```

Each call runs on a thread of its own, started for it and ended with it (the session
starts at most `max_tool_concurrency` at once), so no idle thread outlives a turn. An
`async def` tool runs on an event loop of that thread; an Observable tool is
subscribed, and its thread ends at once (the result comes from its callbacks). Under a
virtual-time scheduler everything runs on that scheduler instead, with no thread.

Disposing a run stops what can be stopped: an Observable's subscription is disposed,
an asyncio task is cancelled. A plain function cannot be interrupted in Python; its
thread ends when it returns, and its result is dropped. No lock is held while user
code runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import threading
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable

from .._models import ToolCall
from ..errors import ToolError
from .tools import Tool

__all__ = ["DECLINED", "Approve", "Done", "ToolRunner", "result_text"]

log = logging.getLogger("rxchat")

Approve = Callable[[ToolCall], "bool | Awaitable[bool] | Observable[bool]"]
"""Asked before each tool call; a false answer declines it."""

DECLINED = "The user declined this tool call, so it was not run."
"""The result given to the model for a call the user refused."""

Done = Callable[[str, "ToolError | None"], None]
"""Told once how a call ended: its tool message's text, and the error (None: it worked)."""

_Then = Callable[[Any, bool], None]  # (value, still on the worker that resolved it)


class ToolRunner:
    """Starts tool calls of the session's tools.

    Args:
        tools: The tools, by name.
        approve: Asked before each call, or None to run every call.
        scheduler: A virtual-time scheduler to run on, or None for worker threads.
    """

    def __init__(
        self, tools: Mapping[str, Tool], approve: Approve | None,
        scheduler: abc.SchedulerBase | None,
    ) -> None:
        self.tools, self._approve, self._scheduler = dict(tools), approve, scheduler

    def start(self, call: ToolCall, done: Done) -> abc.DisposableBase:
        """Start `call`; `done` is told once how it ended, from any thread.

        Args:
            call: The call, as the model made it.
            done: Called with the result text and error, unless the run was disposed
                first.

        Returns:
            Disposing it stops the call (as far as Python allows).
        """
        run = _Run(call, done, self._scheduler)
        name = call.function.name or ""
        tool = self.tools.get(name)
        if tool is None:
            known = ", ".join(map(repr, self.tools)) or "none"
            run.fail(f"there is no tool named {name!r} (the tools are {known})")
            return run
        try:
            arguments = tool.arguments(call.function.arguments)
        except ValueError as exc:
            run.fail(f"tool {name!r} was called with bad arguments: {exc}")
            return run
        except Exception as exc:  # a hand-written schema this check cannot read
            run.fail(f"the arguments of {name!r} could not be checked: {exc}", exc)
            return run
        approve = self._approve
        run.start(
            (lambda: approve(call)) if approve is not None else None,
            lambda: tool.function(**arguments),
        )
        return run


class _Run(abc.DisposableBase):
    """One call in progress; `dispose` stops it."""

    def __init__(self, call: ToolCall, done: Done, scheduler: abc.SchedulerBase | None) -> None:
        self._call, self._done, self._scheduler = call, done, scheduler
        self._lock = threading.Lock()
        self._over = False  # finished or disposed
        self._subscriptions = CompositeDisposable()
        self._task: tuple[asyncio.AbstractEventLoop, asyncio.Task[Any]] | None = None

    def start(self, approval: Callable[[], Any] | None, work: Callable[[], Any]) -> None:
        def approved(answer: Any, on_worker: bool) -> None:
            if not answer:
                self._finish(DECLINED)
            elif on_worker:
                self._resolve(work, self._returned)
            else:
                self._spawn(lambda: self._resolve(work, self._returned))

        if approval is None:
            self._spawn(lambda: self._resolve(work, self._returned))
        else:
            self._spawn(lambda: self._resolve(approval, approved, approving=True))

    def dispose(self) -> None:
        with self._lock:
            self._over, task = True, self._task
        if task is not None:
            loop, running = task
            with contextlib.suppress(RuntimeError):  # a closed loop: the task is over
                loop.call_soon_threadsafe(running.cancel)
        self._subscriptions.dispose()

    def fail(self, problem: str, cause: BaseException | None = None) -> None:
        """End the call with an error the model reads as its result."""
        name = self._call.function.name
        error = ToolError(f"Tool call {self._call.id!r}: {problem}.",
                          tool_call_id=self._call.id, tool_name=name)
        error.__cause__ = cause
        # user code that raised is worth a warning; a model's slip is routine
        log.log(logging.WARNING if cause else logging.INFO, "rxchat: %s", error)
        self._finish(f"Error: {problem}.", error)

    # -- on a worker (or the virtual-time scheduler) --------------------------------

    def _spawn(self, action: Callable[[], None]) -> None:
        if self._scheduler is not None:
            self._scheduler.schedule(lambda _s, _v: action())
        else:
            threading.Thread(target=action, name="rxchat-tool", daemon=True).start()

    def _resolve(self, thunk: Callable[[], Any], then: _Then, approving: bool = False) -> None:
        """Call user code; hand its value (awaited, or an Observable's last) to `then`."""
        if self._over:
            return
        try:
            value = thunk()
            if isinstance(value, Observable):
                self._subscribe(value, then, approving)
                return
            if inspect.isawaitable(value):
                value = self._await(value)
        except asyncio.CancelledError as exc:
            if self._over:
                return  # disposed: the turn was cancelled
            self._failed(exc, approving)  # the tool's own cancel: an error like any other
            return
        except BaseException as exc:  # user code: whatever it raised becomes the result
            self._failed(exc, approving)
            return
        then(value, True)

    def _subscribe(self, source: Observable[Any], then: _Then, approving: bool) -> None:
        last: list[Any] = []

        def next_value(value: Any) -> None:
            last[:] = [value]

        def completed() -> None:
            if last:
                then(last[-1], False)
            else:
                self._failed(ValueError("its Observable completed without a value"), approving)

        self._subscriptions.add(source.subscribe(
            next_value,
            lambda error: self._failed(error, approving),
            completed,
            scheduler=self._scheduler,
        ))

    def _await(self, awaitable: Awaitable[Any]) -> Any:
        """Run a coroutine to its end on an event loop of this thread (cancellable)."""
        coroutine = awaitable if inspect.iscoroutine(awaitable) else _wait(awaitable)
        loop = asyncio.new_event_loop()
        try:
            task = loop.create_task(coroutine)
            with self._lock:
                cancelled, self._task = self._over, (loop, task)
            if cancelled:
                task.cancel()
            return loop.run_until_complete(task)
        finally:
            with self._lock:
                self._task = None
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def _returned(self, value: Any, _on_worker: bool) -> None:
        try:
            text = result_text(value)
        except Exception as exc:  # a result that has no text form
            self._failed(exc, False)
            return
        self._finish(text)

    def _failed(self, exc: BaseException, approving: bool) -> None:
        what = "asking for approval" if approving else "the tool"
        said = f": {exc}" if str(exc) else ""
        self.fail(f"{what} raised {type(exc).__name__}{said}", exc)

    def _finish(self, content: str, error: ToolError | None = None) -> None:
        with self._lock:
            if self._over:
                return
            self._over = True
        self._done(content, error)


async def _wait(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


def result_text(value: Any) -> str:
    """A tool's result as the text of its tool message: a `str` as it is, else JSON.

    Args:
        value: What the tool returned.

    Returns:
        The message text (`str` values unchanged; others as JSON, with `str()` for
        what JSON cannot hold).
    """
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)
