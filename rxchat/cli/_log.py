"""Logging conversations from the command line: which store, which conversation.

Conversations go to the default ``rxchat.stores.SQLiteStore`` (``conversations.db``
in ``RXCHAT_DATA_DIR``, else the user data directory) unless ``--no-log``. A chat's
session is written through at every commit (``rxchat.stores.attach``); the
conversation is created at its first message, so an empty chat leaves nothing behind.
``-c`` resumes the conversation that changed last, ``--cid ID`` a given one.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .._client import ChatClient
from .._models import Message
from .._session.session import ChatSession
from ..errors import ConfigurationError, StoreConflict, StoreError
from ..stores import (
    ConversationStore,
    SQLiteStore,
    StoreWriter,
    attach,
    data_dir,
    load_history,
    resolve_conversation_id,
)

__all__ = ["ConversationLog", "HISTORY_NAME", "open_store", "resumed", "session_holding"]

HISTORY_NAME = "input_history"
"""The input history file of ``rxchat chat``, in the data directory."""


def open_store(args: argparse.Namespace, env: Mapping[str, str]) -> SQLiteStore | None:
    """The store to log to, or None with ``--no-log`` (and nothing to continue).

    Raises:
        StoreError: The database cannot be opened (the message suggests ``--no-log``).
    """
    wanted = getattr(args, "continue_latest", False) or getattr(args, "cid", None)
    if args.no_log and not wanted:
        return None
    try:
        return SQLiteStore(data_dir(env) / "conversations.db")
    except StoreError as exc:
        if args.no_log or type(exc) is not StoreError:
            raise
        raise StoreError(  # e.g. a read-only data directory: say how to go on anyway
            f"{exc} To go on without logging the conversation, add --no-log."
        ) from exc


def history_path(args: argparse.Namespace, env: Mapping[str, str]) -> Path | None:
    """Where typed lines are kept across runs (None with ``--no-log``)."""
    return None if args.no_log else data_dir(env) / HISTORY_NAME


def resumed(
    store: ConversationStore | None, args: argparse.Namespace
) -> tuple[str | None, tuple[Message, ...]]:
    """The conversation ``-c`` or ``--cid`` asks for: its id and its messages.

    Returns:
        ``(None, ())`` when neither was given.

    Raises:
        ConfigurationError: ``-c`` with no logged conversation yet.
        ConfigurationError: ``--cid ''`` (an empty id).
        ConversationNotFoundError: ``--cid`` names no logged conversation (or, as
            ``AmbiguousConversationIdError``, a prefix of several ids).
    """
    cid = getattr(args, "cid", None)
    if cid is not None and not cid.strip():
        raise ConfigurationError(
            "--cid needs a conversation id; `rxchat logs list` shows them "
            "(leave --cid out to start a new conversation)."
        )
    if store is None:
        return None, ()
    if cid:
        conversation_id = resolve_conversation_id(store, cid)
        return conversation_id, load_history(store, conversation_id)
    if getattr(args, "continue_latest", False):
        latest = store.latest()
        if latest is None:
            raise ConfigurationError(
                "There is no logged conversation to continue yet; start one without -c."
            )
        return latest, load_history(store, latest)
    return None, ()


def session_holding(
    messages: tuple[Message, ...], client: ChatClient, **options: Any
) -> ChatSession:
    """A ChatSession whose history is ``messages`` (a resumed conversation)."""
    return ChatSession(client, history=messages, **options)


class ConversationLog:
    """Which conversation the chat's session is written to.

    Args:
        store: Where to write; None writes nothing (``--no-log``).
        report: Called with a failed save's error (the chat goes on).
        enabled: False reads from ``store`` but never writes (``--no-log -c``).
    """

    def __init__(
        self, store: ConversationStore | None, report: Callable[[StoreError], object],
        *, enabled: bool = True, say: Callable[[str], object] | None = None,
    ) -> None:
        self.store = store if enabled else None
        self._report = report
        self._say = say
        self._writer: StoreWriter | None = None
        self._conflicts = 0

    @property
    def conversation_id(self) -> str | None:
        """The conversation being written, once its first message is committed."""
        return None if self._writer is None else self._writer.conversation_id

    def follow(
        self, session: ChatSession, conversation_id: str | None,
        model: Callable[[], str | None], base: tuple[Message, ...] | None = None,
    ) -> None:
        """Write ``session`` to ``conversation_id`` (None: a new one) from now on.

        ``base`` is the stored history the session resumed: if another writer changes
        the conversation after it, the chat explains it and offers ``/fork``.
        """
        self.stop()
        self._conflicts = 0
        if self.store is not None:
            self._writer = attach(session.history, self.store, conversation_id,
                                  model=model, on_error=self._failed, base=base)

    def _failed(self, error: StoreError) -> None:
        if not isinstance(error, StoreConflict):
            self._report(error)
            return
        self._conflicts += 1
        if self._conflicts == 1:
            self._report(StoreConflict(error.conversation_id))
            if self._say is not None:
                self._say(
                    f"[another rxchat (a second window?) changed conversation "
                    f"{error.conversation_id} since this chat loaded it. Nothing was "
                    "overwritten, and this chat is not logged from here on: /fork logs "
                    "it as a new conversation, its whole history included]"
                )
        elif self._say is not None:
            self._say("[this turn was not logged: the conversation changed elsewhere; "
                      "/fork logs this chat as a new conversation]")

    def stop(self) -> None:
        """Stop writing the current session."""
        if self._writer is not None:
            self._writer.dispose()
            self._writer = None
