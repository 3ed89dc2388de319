"""The store logic both SQL backends share, written once against a tiny cursor seam.

A backend supplies ``SQLStore._transaction`` (a context manager yielding a
``Tx``: one database transaction, committed when the block ends, rolled back if
it raises) and the search query; everything else (ids, stamps, titles, the
rewrite-only-the-tail rule of ``save_messages``) lives here. SQL is written with ``?``
placeholders; the PostgreSQL backend turns them into ``%s``.

Tables (both backends):

```text
rxchat_conversations  id, title, title_auto, model, created, updated,
                      message_count, usage          (stamps: microseconds, UTC)
rxchat_messages       conversation_id, position, role, data (JSON), text, digest
```
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol, Self

from .._models import Message
from ..errors import ConversationNotFoundError, StoreError
from ._records import (
    Conversation,
    ConversationSummary,
    MessageRow,
    changed_from,
    export_document,
    message_from_json,
    new_id,
    now_us,
    search_terms,
    title_of,
    to_datetime,
    total_usage,
    usage_from_json,
    usage_json,
)

__all__ = ["SQLStore", "Tx"]

Row = tuple[Any, ...]

_SUMMARY = (
    "SELECT id, title, model, created, updated, message_count, usage "
    "FROM rxchat_conversations"
)


class Tx(Protocol):
    """One open transaction of a backend."""

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Run one statement; its rows (empty for statements that return none)."""
        ...

    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement once per parameter row."""
        ...


class SQLStore:
    """The shared implementation of ``rxchat.stores.ConversationStore``."""

    def _transaction(self, *, write: bool) -> AbstractContextManager[Tx]:
        raise NotImplementedError

    def _search_ids(self, tx: Tx, terms: builtins.list[str], limit: int) -> builtins.list[Row]:
        raise NotImplementedError

    def close(self) -> None:
        """Close the database connection."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing ----------------------------------------------------------------------

    def create(self, *, model: str | None = None, title: str | None = None) -> str:
        """Start an empty conversation.

        Args:
            model: The model it talks to, if known.
            title: Its title; by default the first user message, once there is one.

        Returns:
            The new conversation's id.

        Raises:
            StoreError: The store could not be written.
        """
        conversation_id = new_id()
        with self._transaction(write=True) as tx:
            stamp = _next_stamp(tx)
            tx.query(
                "INSERT INTO rxchat_conversations (id, title, title_auto, model, created, "
                "updated, message_count, usage) VALUES (?, ?, ?, ?, ?, ?, 0, NULL)",
                (conversation_id, title, title is None, model, stamp, stamp),
            )
        return conversation_id

    def save_messages(
        self, conversation_id: str, messages: Sequence[Message], *, model: str | None = None
    ) -> None:
        """Make the stored messages exactly ``messages``, in one transaction.

        Messages already stored unchanged at the start are not rewritten: appending a
        turn inserts only its new rows; an undo or a regenerated reply replaces the tail.

        Args:
            conversation_id: The conversation.
            messages: Its whole history, oldest first.
            model: The model now in use (kept as it was if None).

        Raises:
            ConversationNotFoundError: No conversation has this id.
            StoreError: The store could not be written.
        """
        rows = [MessageRow.of(m) for m in messages]
        with self._transaction(write=True) as tx:
            found = tx.query(
                "SELECT title_auto FROM rxchat_conversations WHERE id = ?", (conversation_id,)
            )
            if not found:
                raise ConversationNotFoundError(conversation_id)
            old = tx.query(
                "SELECT digest FROM rxchat_messages WHERE conversation_id = ? "
                "ORDER BY position", (conversation_id,),
            )
            keep = changed_from([d for (d,) in old], rows)
            if keep < len(old):
                tx.query(
                    "DELETE FROM rxchat_messages WHERE conversation_id = ? AND position >= ?",
                    (conversation_id, keep),
                )
            tx.many(
                "INSERT INTO rxchat_messages (conversation_id, position, role, data, text, "
                "digest) VALUES (?, ?, ?, ?, ?, ?)",
                [(conversation_id, i, r.role, r.data, r.text, r.digest)
                 for i, r in enumerate(rows[keep:], start=keep)],
            )
            title = title_of(messages) if found[0][0] else None
            tx.query(
                "UPDATE rxchat_conversations SET updated = ?, message_count = ?, usage = ?, "
                "model = COALESCE(?, model), "
                "title = CASE WHEN title_auto THEN ? ELSE title END WHERE id = ?",
                (_next_stamp(tx), len(rows), usage_json(total_usage(messages)), model,
                 title, conversation_id),
            )

    def delete(self, conversation_id: str) -> None:
        """Delete a conversation and its messages.

        Raises:
            ConversationNotFoundError: No conversation has this id.
            StoreError: The store could not be written.
        """
        with self._transaction(write=True) as tx:
            tx.query("DELETE FROM rxchat_messages WHERE conversation_id = ?", (conversation_id,))
            gone = tx.query(
                "DELETE FROM rxchat_conversations WHERE id = ? RETURNING id", (conversation_id,)
            )
            if not gone:
                raise ConversationNotFoundError(conversation_id)

    # -- reading ----------------------------------------------------------------------

    def get(self, conversation_id: str) -> Conversation:
        """A conversation with all its messages.

        Raises:
            ConversationNotFoundError: No conversation has this id.
            StoreError: The store could not be read.
        """
        with self._transaction(write=False) as tx:
            found = tx.query(f"{_SUMMARY} WHERE id = ?", (conversation_id,))
            if not found:
                raise ConversationNotFoundError(conversation_id)
            data = tx.query(
                "SELECT data FROM rxchat_messages WHERE conversation_id = ? ORDER BY position",
                (conversation_id,),
            )
        summary = _summary(found[0])
        messages = tuple(message_from_json(text) for (text,) in data)
        return Conversation(**vars(summary), messages=messages)

    def latest(self) -> str | None:
        """The id of the conversation that changed last, or None if there is none.

        Raises:
            StoreError: The store could not be read.
        """
        with self._transaction(write=False) as tx:
            rows = tx.query(
                "SELECT id FROM rxchat_conversations ORDER BY updated DESC, id DESC LIMIT 1"
            )
        return str(rows[0][0]) if rows else None

    def list(self, limit: int = 20) -> builtins.list[ConversationSummary]:
        """The conversations, the one that changed last first.

        Args:
            limit: At most this many.

        Raises:
            StoreError: The store could not be read.
        """
        with self._transaction(write=False) as tx:
            rows = tx.query(f"{_SUMMARY} ORDER BY updated DESC, id DESC LIMIT ?", (limit,))
        return [_summary(row) for row in rows]

    def search(self, text: str, limit: int = 20) -> builtins.list[ConversationSummary]:
        """The conversations with a message containing every word of ``text``.

        Words match whole, ignoring case; punctuation in ``text`` is ignored. The one
        that changed last comes first.

        Args:
            text: The words to look for.
            limit: At most this many conversations.

        Raises:
            StoreError: The store could not be read.
        """
        terms = search_terms(text)
        if not terms:
            return []
        with self._transaction(write=False) as tx:
            rows = self._search_ids(tx, terms, limit)
        return [_summary(row) for row in rows]

    def export(self, conversation_id: str) -> dict[str, Any]:
        """A conversation as a JSON-ready dict (a session document, see the docs).

        Raises:
            ConversationNotFoundError: No conversation has this id.
            StoreError: The store could not be read.
        """
        return export_document(self.get(conversation_id))


def _next_stamp(tx: Tx) -> int:
    """Now, but later than every stored change, so "newest first" is a strict order."""
    (latest,) = tx.query("SELECT COALESCE(MAX(updated), 0) FROM rxchat_conversations")[0]
    return max(now_us(), int(latest) + 1)


def _summary(row: Row) -> ConversationSummary:
    conversation_id, title, model, created, updated, count, usage = row
    return ConversationSummary(
        id=str(conversation_id), title=title, model=model, created=to_datetime(int(created)),
        updated=to_datetime(int(updated)), message_count=int(count),
        usage=usage_from_json(usage),
    )


def summary_columns() -> str:
    """The SELECT of a summary row, for backends' search queries."""
    return _SUMMARY


def migrate(
    tx: Tx, version: int, migrations: Sequence[Sequence[str]], where: str,
    record: Callable[[int], object],
) -> None:
    """Bring a schema at `version` up to date, in the caller's transaction.

    Args:
        tx: The transaction.
        version: The schema version the store is at.
        migrations: Each version's statements, oldest first.
        where: The store, as named in messages (a path, a host without password).
        record: Stores a new version number (within `tx`); what it returns is unused.

    Raises:
        StoreError: The schema is newer than this rxchat knows.
    """
    if version > len(migrations):
        raise StoreError(
            f"The conversation store {where} has schema version {version}, newer than "
            f"this rxchat knows ({len(migrations)}); upgrade rxchat to use it."
        )
    for number, statements in enumerate(migrations[version:], start=version + 1):
        for statement in statements:
            tx.query(statement)
        record(number)
