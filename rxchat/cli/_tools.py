"""``rxchat chat --tool module:function``: load tools, ask before each call, show each.

Tool calls run on the session's worker threads, but the terminal belongs to the main
thread (it renders the reply). So approval is an Observable: ``approve(call)`` hands a
question to the main thread through the reply's inbox and returns an ``AsyncSubject``
that the main thread answers with the person's y/n; the worker is never blocked on the
terminal. Each call is shown, dimmed, when its result is committed:
``  ↳ add({"a": 1, "b": 2}) → 3``.
"""

from __future__ import annotations

import importlib
import os
import queue
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

from reactivex import Observable
from reactivex.subject import AsyncSubject

from .._models import Message, ToolCall
from .._session.state import ChatState
from .._tools.tools import Tool, tool_table
from ..errors import ConfigurationError
from ._console import Console
from ._render import ReplyView
from ._safe import escape_controls

__all__ = ["MainThreadTask", "ToolDesk", "load_tools"]

MainThreadTask = Callable[[ReplyView], None]
"""Work the reply loop runs on the main thread, with the reply's view."""

SHOWN_CHARS = 120
"""Arguments and results longer than this are shown cut, with an ellipsis."""


def load_tools(specs: Sequence[str]) -> list[Tool]:
    """The tools named `module:function` (a `Tool` or a plain function each).

    Modules are found on the Python path and in the current directory.

    Raises:
        ConfigurationError: A spec is malformed, its module cannot be imported, or it
            names nothing callable (the message says which).
    """
    tools: list[Tool] = []
    for spec in specs:
        module_name, colon, attribute = spec.partition(":")
        if not colon or not module_name or not attribute:
            raise ConfigurationError(f"--tool {spec!r}: write it as module:function.")
        _search_current_directory()
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:
            where = ""
            if isinstance(exc, ModuleNotFoundError) and exc.name is not None and (
                module_name == exc.name or module_name.startswith(exc.name + ".")
            ):
                where = (f"; looked in the current directory ({os.getcwd()}) and on the "
                         "Python path: run rxchat from the folder that holds it, or add "
                         "that folder to PYTHONPATH")
            raise ConfigurationError(f"--tool {spec!r}: cannot import {module_name!r} "
                                     f"({type(exc).__name__}: {exc}){where}.") from exc
        value: Any = module
        for part in attribute.split("."):
            value = getattr(value, part, None)
        if not callable(value):
            raise ConfigurationError(f"--tool {spec!r}: {module_name} has no function "
                                     f"{attribute!r}.")
        tools.append(value if isinstance(value, Tool) else Tool.from_function(value))
    tool_table(tools)  # two tools of one name fail here, before the chat starts
    return tools


def _search_current_directory() -> None:
    """Find modules in the current directory, as ``python -m rxchat`` does.

    The ``rxchat`` console script's path starts with its own folder, not the current
    one, so ``--tool mytools:add`` would not find ``./mytools.py``. The current
    directory goes last: a file there never hides an installed module.
    """
    here = os.getcwd()
    entries = {os.path.abspath(entry or os.curdir) for entry in sys.path}
    if here not in entries:
        sys.path.append(here)
    importlib.invalidate_caches()  # a module written since the last look is found


class ToolDesk:
    """Between the session's tools and the terminal: approval prompts and call lines.

    Args:
        console: The terminal.
        ask_first: Whether to ask y/n before each call (no `--yes`).
    """

    def __init__(self, console: Console, *, ask_first: bool) -> None:
        self._console, self._ask_first = console, ask_first
        self._lock = threading.Lock()
        self._inbox: queue.Queue[Any] | None = None
        self._seen = 0

    def open(self, inbox: queue.Queue[Any] | None) -> None:
        """Route questions and call lines to a reply's inbox (None between replies)."""
        with self._lock:
            self._inbox = inbox

    def approve(self, call: ToolCall) -> Observable[bool]:
        """Ask the person (on the main thread) whether `call` may run.

        Returns:
            Their answer, once given; False when no reply is being shown.
        """
        answer: AsyncSubject[bool] = AsyncSubject()

        def ask(view: ReplyView) -> None:
            text = f"run {_signature(call)}? [y/N] "
            view.pause()
            try:
                line = self._console.read_line(self._console.palette(
                    self._console.stdout).dim(text))
            except (EOFError, KeyboardInterrupt):
                line = ""
            answer.on_next(line.strip().lower() in ("y", "yes"))
            answer.on_completed()

        if not self._post(ask):
            answer.on_next(False)
            answer.on_completed()
        return answer

    def watch(self, state: ChatState) -> None:
        """A session subscriber: show each tool result once it is committed."""
        messages = state.messages
        with self._lock:
            if len(messages) < self._seen:  # undo / reset: start over
                self._seen = 0
            new, self._seen = messages[self._seen:], len(messages)
        calls = {c.id: c for m in messages if m.tool_calls for c in m.tool_calls}
        for message in new:
            if message.role == "tool" and message.tool_call_id in calls:
                self._post(_shower(calls[message.tool_call_id], message))

    def _post(self, task: MainThreadTask) -> bool:
        with self._lock:
            inbox = self._inbox
        if inbox is None:
            return False
        inbox.put(task)
        return True


def _shower(call: ToolCall, result: Message) -> MainThreadTask:
    def show(view: ReplyView) -> None:
        view.pause()
        view.note(f"  ↳ {_signature(call)} → {_cut(result.content or '')}")

    return show


def _signature(call: ToolCall) -> str:
    return f"{call.function.name}({_cut(call.function.arguments)})"


def _cut(text: str) -> str:
    """Model-written text (arguments, results) as one short line, controls escaped."""
    text = escape_controls(" ".join(text.split()))
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"
