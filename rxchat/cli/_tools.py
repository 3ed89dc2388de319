"""``--tool MODULE:FUNCTION``: Python functions offered to the model, asked before each call.

Each ``--tool`` names a function importable from the current directory or the
installed packages (``--tool mytools:weather``, ``--tool pkg.mod:Class.method``). It is
loaded and checked before the chat starts, so a typo is one clear line, not a failure
mid-conversation. Before every call the chat asks ``run weather({"city": "Oslo"})?
[y/N]``; ``--yes`` runs them without asking.

The session runs the calls (``ChatSession(tools=..., approve=...)``):
``tool_session_options`` is the one place that hands them over.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from .._models import ToolCall
from .._session import ChatSession
from ..errors import ConfigurationError
from ._console import Console

__all__ = ["console_approval", "load_tools", "tool_session_options"]


def load_tools(specs: Sequence[str]) -> list[Callable[..., Any]]:
    """Import each ``MODULE:FUNCTION``.

    Args:
        specs: The ``--tool`` values.

    Returns:
        The functions, in order.

    Raises:
        ConfigurationError: A spec is malformed, its module cannot be imported, or it
            does not name a callable.
    """
    if specs and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # as `python -m` would: tools next to you
    return [_load(spec) for spec in specs]


def _load(spec: str) -> Callable[..., Any]:
    module_name, _, path = spec.partition(":")
    if not module_name or not path:
        raise ConfigurationError(
            f"--tool {spec!r} is not MODULE:FUNCTION; e.g. --tool mytools:weather."
        )
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(
            f"--tool {spec!r}: module {module_name!r} could not be imported ({exc}); it "
            "must be importable from the current directory or the installed packages."
        ) from None
    for name in path.split("."):
        if not hasattr(target, name):
            raise ConfigurationError(f"--tool {spec!r}: {module_name} has no {path!r}.")
        target = getattr(target, name)
    if not callable(target):
        raise ConfigurationError(f"--tool {spec!r}: {path!r} is not a function.")
    return target  # type: ignore[no-any-return]


def console_approval(console: Console, *, yes: bool) -> Callable[[ToolCall], bool]:
    """The approval asked before each tool call.

    Args:
        console: Where to ask.
        yes: Approve every call without asking (``--yes``).

    Returns:
        ``approve(call)``: True to run the call. Anything but ``y``/``yes``, Ctrl-C and
        Ctrl-D refuse it.
    """

    def approve(call: ToolCall) -> bool:
        if yes:
            return True
        question = f"run {call.function.name}({call.function.arguments})? [y/N] "
        try:
            answer = console.read_line(console.palette(console.stdout).bold(question))
        except (EOFError, KeyboardInterrupt):
            console.out("")
            return False
        return answer.strip().lower() in ("y", "yes")

    return approve


def tool_session_options(
    tools: Sequence[Callable[..., Any]], approve: Callable[[ToolCall], bool]
) -> dict[str, Any]:
    """The ``ChatSession`` arguments that offer ``tools`` (none if there are none).

    Raises:
        ConfigurationError: Tools were given but this ChatSession cannot call them.
    """
    if not tools:
        return {}
    if "tools" not in inspect.signature(ChatSession).parameters:
        raise ConfigurationError(
            "--tool needs tool calling in ChatSession, which this version of rxchat does "
            "not have yet; run without --tool."
        )
    return {"tools": list(tools), "approve": approve}
