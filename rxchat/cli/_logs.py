"""``rxchat logs``: list, show, search, export and delete the logged conversations.

They live in the default ``rxchat.stores.SQLiteStore`` (see ``._log``).
``export`` writes a session document: ``/load FILE`` in ``rxchat chat`` and
``ChatSession.load`` read it back.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable, Mapping

from .._models import Message
from .._wire.text import valid_text
from ..stores import (
    ConversationStore,
    ConversationSummary,
    SQLiteStore,
    data_dir,
    resolve_conversation_id,
)
from ._console import Console
from ._errors import ExitCode
from ._render import Palette

__all__ = ["describe_message", "run_logs"]

Action = Callable[[ConversationStore, argparse.Namespace, Console], None]


def _list(store: ConversationStore, args: argparse.Namespace, console: Console) -> None:
    _print_summaries(store.list(limit=args.limit), console, "No conversations logged yet.")


def _search(store: ConversationStore, args: argparse.Namespace, console: Console) -> None:
    text = " ".join(args.text)
    found = store.search(text, limit=args.limit)
    _print_summaries(found, console, f"No logged conversation contains {text!r}.")


def _show(store: ConversationStore, args: argparse.Namespace, console: Console) -> None:
    conversation = store.get(resolve_conversation_id(store, args.id))
    palette = console.palette(console.stdout)
    console.out(palette.bold(console.shown(conversation.title or "(untitled)")))
    usage = conversation.usage
    tokens = f", {usage.total_tokens} tokens" if usage is not None else ""
    model = console.shown(conversation.model or "-")
    console.out(palette.dim(f"{conversation.id}  {_when(conversation)}  {model}{tokens}"))
    for message in conversation.messages:
        console.out(describe_message(message, palette, console.shown))


def _export(store: ConversationStore, args: argparse.Namespace, console: Console) -> None:
    conversation_id = resolve_conversation_id(store, args.id)
    console.out(json.dumps(store.export(conversation_id), ensure_ascii=False, indent=2))


def _remove(store: ConversationStore, args: argparse.Namespace, console: Console) -> None:
    conversation_id = resolve_conversation_id(store, args.id)
    store.delete(conversation_id)
    console.out(f"Deleted conversation {conversation_id}.")


ACTIONS: Mapping[str, Action] = {
    "list": _list, "search": _search, "show": _show, "export": _export, "rm": _remove,
}


def run_logs(args: argparse.Namespace, console: Console) -> int:
    """Run one ``rxchat logs`` action on the default store.

    Returns:
        0.

    Raises:
        ConversationNotFoundError: The id names no logged conversation.
        StoreError: The store could not be opened or read.
    """
    path = data_dir(console.env) / "conversations.db"
    # reading needs no write access: `logs list` works in a read-only data directory
    read_only = args.logs_action != "rm" and os.path.exists(path)
    with SQLiteStore(path, read_only=read_only) as store:
        ACTIONS[args.logs_action](store, args, console)
    return ExitCode.OK


def describe_message(
    message: Message, palette: Palette, shown: Callable[[str], str] = valid_text
) -> str:
    """One message as ``who: text``, with reasoning dimmed and tool calls named.

    Args:
        message: Any message of a conversation.
        palette: The styles of the stream it is written to.
        shown: Makes the message's own text safe for that stream (`Console.shown`:
            control characters escaped on a terminal); styles are added after it.

    Returns:
        The line(s) to print.
    """
    role = shown(message.role)
    who = {"user": "you", "assistant": "assistant"}.get(role, role)
    text = shown(message.content or "")
    for call in message.tool_calls:
        text += shown(f" [calls {call.function.name}({call.function.arguments})]")
    if message.finish_reason == "cancelled":
        text += " [cancelled]"
    if message.reasoning_content:
        text = palette.dim(f"(thinking: {shown(message.reasoning_content)}) ") + text
    return f"{palette.bold(who)}: {text.strip()}"


def _print_summaries(
    summaries: list[ConversationSummary], console: Console, empty: str
) -> None:
    if not summaries:
        console.err(empty)
        return
    palette = console.palette(console.stdout)
    for summary in summaries:
        count = f"{summary.message_count} msg"
        console.out(f"{summary.id}  {palette.dim(_when(summary))}  {count:>7}  "
                    f"{console.shown(summary.title or '(untitled)')}")


def _when(summary: ConversationSummary) -> str:
    return summary.updated.astimezone().strftime("%Y-%m-%d %H:%M")
