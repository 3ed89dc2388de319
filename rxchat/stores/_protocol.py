"""The ``ConversationStore`` protocol: what ``ChatSession`` and the CLI need of a store."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from .._models import Message
from ._records import Conversation, ConversationSummary

__all__ = ["ConversationStore"]


@runtime_checkable
class ConversationStore(Protocol):
    """Where conversations are kept: ``SQLiteStore``, ``PostgresStore``, or yours.

    Every method is safe to call from any thread. A method given an id that no
    conversation has raises ``rxchat.errors.ConversationNotFoundError``; any other
    failure of the store is a ``rxchat.errors.StoreError``. Every text a session can
    commit (NUL, lone surrogates, any code point) is stored and read back identical.
    """

    def create(self, *, model: str | None = None, title: str | None = None) -> str:
        """Start an empty conversation and return its id."""
        ...

    def save_messages(
        self, conversation_id: str, messages: Sequence[Message], *,
        model: str | None = None, expected: Sequence[Message] | None = None,
    ) -> None:
        """Make the stored messages exactly ``messages``, atomically.

        With ``expected``, only if the stored messages are ``expected`` (or already
        ``messages``); else raise ``rxchat.errors.StoreConflict`` and write nothing.
        """
        ...

    def get(self, conversation_id: str) -> Conversation:
        """A conversation with all its messages."""
        ...

    def latest(self) -> str | None:
        """The id of the conversation that changed last, or None."""
        ...

    def list(self, limit: int = 20) -> builtins.list[ConversationSummary]:
        """The conversations, the one that changed last first."""
        ...

    def search(self, text: str, limit: int = 20) -> builtins.list[ConversationSummary]:
        """The conversations with a message containing every word of ``text``."""
        ...

    def export(self, conversation_id: str) -> dict[str, Any]:
        """A conversation as a JSON-ready dict."""
        ...

    def delete(self, conversation_id: str) -> None:
        """Delete a conversation and its messages."""
        ...

    def close(self) -> None:
        """Release the store's connection."""
        ...
