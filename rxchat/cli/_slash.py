"""The slash commands of ``rxchat chat``: ``/help``, ``/reset``, ``/undo`` and the rest.

Each command is a function of the chat and the text after its name; it returns True
to end the chat. A command that cannot be done now (``/undo`` with no turns, ``/load``
of a missing file) prints one line and the chat goes on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from reactivex import Observable

from .._models import Message
from .._session.session import ChatSession
from ..errors import RxChatError
from ._backend import Backend
from ._console import Console
from ._log import ConversationLog
from ._logs import describe_message
from ._render import Palette

__all__ = ["ALIASES", "COMMANDS", "Chat", "run_command"]


class Chat(Protocol):
    """What a slash command may use of the chat (`rxchat.cli._chat.Chat` is one)."""

    console: Console
    backend: Backend
    palette: Palette
    session: ChatSession
    log: ConversationLog

    def replace_session(self, session: ChatSession) -> None:
        """Go on with `session` instead of the current one."""

    def turn(self, ask: Callable[[], Observable[Message]]) -> Any:
        """Play one turn asked by `ask`."""

    def error(self, error: BaseException, *, hint: str = "") -> None:
        """Report `error` in one line."""

    def problem(self, text: str) -> None:
        """Say what cannot be done now."""

    def say(self, text: str) -> None:
        """Print one line."""


Handler = Callable[[Chat, str], bool]


def _help(chat: Chat, _arg: str) -> bool:
    for _handler, usage in COMMANDS.values():
        chat.console.out(f"  {usage}")
    chat.console.out("  Ctrl-C stops a reply (keeping what arrived); Ctrl-D quits.")
    return False


def _reset(chat: Chat, _arg: str) -> bool:
    chat.log.stop()  # the logged conversation stays as it was; a new one starts
    chat.session.reset()
    chat.replace_session(chat.session)
    chat.say("[history cleared; the system prompt is kept]")
    return False


def _undo(chat: Chat, _arg: str) -> bool:
    chat.session.undo()
    chat.say(f"[last turn removed; {_turns(chat.session.messages)} left]")
    return False


def _retry(chat: Chat, _arg: str) -> bool:
    chat.turn(chat.session.regenerate)
    return False


def _system(chat: Chat, arg: str) -> bool:
    had = any(m.role == "system" for m in chat.session.messages[:1])
    if not arg and not had:
        chat.say("[there is no system prompt to remove; /system TEXT sets one]")
        return False
    chat.session.set_system(arg or None)
    chat.say(f"[system prompt {'set' if arg else 'removed'}; the history is kept]")
    return False


def _model(chat: Chat, arg: str) -> bool:
    if arg:
        chat.session.model = arg
    chat.say(f"[model: {chat.session.model or chat.backend.client.model}]")
    return False


def _save(chat: Chat, arg: str) -> bool:
    if not arg:
        chat.problem("Say where: /save PATH.")
        return False
    chat.session.save(arg)
    count = len(chat.session.messages)
    chat.say(f"[saved {count} message{'' if count == 1 else 's'} to {arg}]")
    return False


def _load(chat: Chat, arg: str) -> bool:
    if not arg:
        chat.problem("Say which file: /load PATH.")
        return False
    chat.replace_session(ChatSession.load(arg, client=chat.backend.client))
    chat.say(f"[loaded {_turns(chat.session.messages)} from {arg}]")
    return False


def _history(chat: Chat, _arg: str) -> bool:
    if not chat.session.messages:
        chat.say("[no messages yet]")
    for message in chat.session.messages:
        chat.console.out(describe_message(message, chat.palette, chat.console.shown))
    return False


def _id(chat: Chat, _arg: str) -> bool:
    if chat.log.store is None:
        chat.say("[not logged: --no-log]")
    elif chat.log.conversation_id is None:
        chat.say("[not logged yet: a conversation is logged from its first message]")
    else:
        chat.say(f"[conversation {chat.log.conversation_id}]")
    return False


def _fork(chat: Chat, _arg: str) -> bool:
    if chat.log.store is None:
        chat.say("[not logged: --no-log]")
        return False
    chat.log.follow(chat.session, None, lambda: chat.session.model or chat.backend.client.model)
    chat.say("[this chat is now logged as a new conversation, its history included; "
             "/id shows its id]")
    return False


def _exit(_chat: Chat, _arg: str) -> bool:
    return True


COMMANDS: Mapping[str, tuple[Handler, str]] = {
    "/help": (_help, "/help            this list"),
    "/reset": (_reset, "/reset           start afresh (keeps the system prompt; the log "
               "keeps the old conversation)"),
    "/undo": (_undo, "/undo            remove the last turn"),
    "/retry": (_retry, "/retry           ask the last (or failed) turn again"),
    "/system": (_system, "/system TEXT     set the system prompt (the history is kept)"),
    "/model": (_model, "/model NAME      use another model from now on"),
    "/save": (_save, "/save PATH       save the conversation to a file"),
    "/load": (_load, "/load PATH       load a conversation saved with /save"),
    "/history": (_history, "/history         show the conversation so far"),
    "/id": (_id, "/id              the id of this conversation in the log"),
    "/fork": (_fork, "/fork            log this chat as a new conversation from now on"),
    "/exit": (_exit, "/exit, /quit     leave (also Ctrl-D)"),
}

# Other names users type for a command (not listed by /help on their own line).
ALIASES: Mapping[str, str] = {"/quit": "/exit", "/q": "/exit", "/?": "/help"}


def run_command(chat: Chat, line: str) -> bool:
    """Run the slash command on ``line``.

    Args:
        chat: The chat it acts on.
        line: The typed line, starting with ``/``.

    Returns:
        True if the chat should end.
    """
    name, _, arg = line.partition(" ")
    entry = COMMANDS.get(ALIASES.get(name.lower(), name.lower()))
    if entry is None:
        chat.problem(f"Unknown command {name}; /help lists the commands.")
        return False
    try:
        return entry[0](chat, arg.strip())
    except (RxChatError, OSError) as exc:
        chat.error(exc)
        return False


def _turns(messages: tuple[Message, ...]) -> str:
    count = sum(1 for m in messages if m.role == "user")
    return f"{count} turn" if count == 1 else f"{count} turns"
