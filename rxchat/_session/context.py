"""What a turn sends: the history as request messages, trimmed to a context window.

Every request carries the system prompt, as much recent history as fits, and the new
message. History is never trimmed itself; only what is sent. Reasoning is never sent
back (SiliconFlow's and DeepSeek's documented multi-turn practice):
``Message.to_request_dict`` drops it.

Trimming drops whole turns, oldest first. A turn runs from a user message to the next
one, so an assistant message with ``tool_calls`` always travels with the tool results
that answer it; when the new message is itself a tool result, the turn holding its
call is kept too. If the pinned part alone is over the window it is sent anyway, and
the server decides.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, cast

from .._models import ChatCompletionParams, Message
from .._tools.tools import Tool
from .state import ChatState, system_prefix

__all__ = ["TokenCounter", "estimate_tokens", "request_messages", "request_params"]

TokenCounter = Callable[[Mapping[str, Any]], int]
"""Counts the tokens of one request message (a wire dict)."""

CHARS_PER_TOKEN = 4
"""The default estimate's characters per token (English text averages about 4)."""

TOKENS_PER_MESSAGE = 4
"""The default estimate's overhead per message (role and separators)."""


def estimate_tokens(message: Mapping[str, Any]) -> int:
    """The default token estimate of one request message.

    About one token per 4 characters of text (content, name, tool-call names and
    arguments), rounded up, plus 4 per message. It needs no tokenizer; pass your own
    ``count_tokens`` (for example one built on ``tiktoken``) for exact counts.

    Args:
        message: A wire message dict, as sent in ``messages``.

    Returns:
        The estimated number of tokens.
    """
    chars = len(_text(message.get("content"))) + len(_text(message.get("name")))
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        chars += len(_text(function.get("name"))) + len(_text(function.get("arguments")))
    return -(-chars // CHARS_PER_TOKEN) + TOKENS_PER_MESSAGE


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):  # content parts: [{"type": "text", "text": ...}, ...]
        return "".join(str(p.get("text") or "") for p in value if isinstance(p, Mapping))
    return ""


def request_messages(
    context: tuple[Message, ...],
    message: Message,
    *,
    context_window: int | None = None,
    count_tokens: TokenCounter = estimate_tokens,
) -> list[dict[str, Any]]:
    """The ``messages`` of a request: history that fits, then the new message.

    Args:
        context: The committed history the turn builds on.
        message: The new message (never dropped).
        context_window: Token budget for the whole request, or None for no limit.
        count_tokens: Counts one wire message.

    Returns:
        Wire message dicts, oldest first, without reasoning, and without empty
        assistant replies (a turn cancelled before its first delta), which some
        providers reject.
    """
    context = tuple(m for m in context if not _is_empty_reply(m))
    wires = [m.to_request_dict() for m in context]
    new = message.to_request_dict()
    if context_window is None:
        return [*wires, new]
    head = len(system_prefix(context))
    starts = _turn_starts(context, head)
    pinned = starts.pop() if message.role == "tool" and starts else len(wires)
    counts = [count_tokens(w) for w in wires]
    budget = context_window - count_tokens(new) - sum(counts[:head]) - sum(counts[pinned:])
    keep_from = pinned
    for start in reversed(starts):
        cost = sum(counts[start:keep_from])
        if cost > budget:
            break
        budget -= cost
        keep_from = start
    return [*wires[:head], *wires[keep_from:], new]


def request_params(
    params: Mapping[str, Any],
    state: ChatState,
    *,
    model: str | None,
    tools: Iterable[Tool],
    context_window: int | None,
    count_tokens: TokenCounter,
) -> ChatCompletionParams:
    """The body of the request a session sends for the step that started in `state`.

    Args:
        params: The session's other request fields.
        state: A state whose turn (or next tool-loop step) just started.
        model: The session's model, if set (overrides `params["model"]`).
        tools: The session's tools, added to any `params["tools"]`.
        context_window: Token budget of the request, or None.
        count_tokens: Counts one wire message.

    Returns:
        The request body; it asks for usage (``stream_options.include_usage``) unless
        `params` has its own ``stream_options``.
    """
    body = dict(params)
    # the history keeps each reply's usage (and a store writes it): ask OpenAI-style
    # servers for it, unless the session's params say otherwise
    body.setdefault("stream_options", {"include_usage": True})
    if model is not None:
        body["model"] = model
    entries = [t.to_dict() for t in tools]
    if entries:
        body["tools"] = [*body.get("tools", ()), *entries]
    context, new = state.context, state.pending
    if new is None:  # a tool loop's next step: the history is the request
        context, new = context[:-1], context[-1]
    body["messages"] = request_messages(
        context, new, context_window=context_window, count_tokens=count_tokens,
    )
    return cast(ChatCompletionParams, body)


def _is_empty_reply(message: Message) -> bool:
    return message.role == "assistant" and not message.content and not message.tool_calls


def _turn_starts(context: tuple[Message, ...], head: int) -> list[int]:
    """Where each droppable group begins: after the system prompt, and at user messages."""
    starts = [i for i in range(head, len(context)) if context[i].role == "user"]
    if head < len(context) and (not starts or starts[0] != head):
        starts.insert(0, head)
    return starts
