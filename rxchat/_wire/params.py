"""Request params checked at the call, before any request: what a new user gets wrong.

``create_stream_completion({"messages": "hello"})``, a string as params, a misspelled
``"mesages"``, an empty list or a message without ``role`` would otherwise be sent, or
fail on the reader thread as a "broken stream". `check_params` raises at the call
instead, naming ``messages`` or ``role`` and showing the shape expected. It is O(number
of messages) per request, and never on the per-delta path.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from .._models import ChatMessage, Message
from ..errors import ConfigurationError

__all__ = ["check_params"]

_EXAMPLE = '{"messages": [{"role": "user", "content": "Hello"}]}'


def check_params(params: Any) -> None:
    """Check the shape of request params (the body of a chat completion).

    Args:
        params: What the caller passed as ``params``.

    Raises:
        TypeError: ``params`` is not a mapping, ``messages`` is not a list, or a
            message is not a dict, `ChatMessage` or `Message`.
        ConfigurationError: ``messages`` is missing or empty, or a message has no
            ``role``.
    """
    if not isinstance(params, Mapping):
        raise TypeError(
            f"params must be a dict shaped like the OpenAI request, e.g. {_EXAMPLE}; "
            f"got {_shown(params)}."
        )
    if "messages" not in params:
        near = difflib.get_close_matches("messages", [str(k) for k in params], n=1)
        did = f" (did you mean 'messages' instead of {near[0]!r}?)" if near else ""
        raise ConfigurationError(
            f"params has no 'messages'{did}: pass the conversation as a list of "
            f"messages, e.g. {_EXAMPLE}."
        )
    messages = params["messages"]
    if isinstance(messages, (str, bytes, Mapping)) or not isinstance(messages, (list, tuple)):
        raise TypeError(
            f"params['messages'] must be a list of messages, e.g. {_EXAMPLE}; got "
            f"{_shown(messages)}."
        )
    if not messages:
        raise ConfigurationError(
            "params['messages'] is empty: a request needs at least one message, e.g. "
            f"{_EXAMPLE}."
        )
    for i, message in enumerate(messages):
        _check_message(i, message)


def _check_message(i: int, message: Any) -> None:
    if isinstance(message, (ChatMessage, Message)):
        role: Any = message.role
    elif isinstance(message, Mapping):
        role = message.get("role")
    else:
        raise TypeError(
            f"params['messages'][{i}] must be a dict with 'role' and 'content' (or a "
            f"ChatMessage); got {_shown(message)}."
        )
    if not isinstance(role, str) or not role:
        raise ConfigurationError(
            f"params['messages'][{i}] has no 'role' (got {_shown(role)}): each message "
            "needs one of 'system', 'user', 'assistant' or 'tool', e.g. "
            '{"role": "user", "content": "Hello"}.'
        )


def _shown(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:80]}{'...' if len(text) > 80 else ''}"
