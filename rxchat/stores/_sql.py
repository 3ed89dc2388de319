"""The store logic both SQL backends share, written once against a tiny cursor seam.

A backend supplies ``SQLStore._transaction`` (a context manager yielding a
``Tx``: one database transaction, committed when the block ends, rolled back if
it raises), ``_translate`` (its driver's errors as ``StoreError``) and the search
query; everything else (ids, stamps, titles, the rewrite-only-the-tail rule and the
compare-and-set of ``save_messages``, group commits, one retry after a lost
connection) lives here. SQL is written with ``?``
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
import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol, Self, TypeVar, cast

from .._models import Message
from ..errors import ConversationNotFoundError, StoreConflict, StoreError
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
    storable,
    title_of,
    to_datetime,
    total_usage,
    usage_from_json,
    usage_json,
)

__all__ = ["ConnectionLostError", "SQLStore", "Tx"]

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


class ConnectionLostError(StoreError):
    """The server closed the connection (restart, failover, idle timeout): the call
    that met it is tried once more on a new connection."""


T = TypeVar("T")


class _Job:
    """One write waiting for a group commit: its body, then its outcome."""

    __slots__ = ("body", "done", "error", "value")

    def __init__(self, body: Callable[[Tx], Any]) -> None:
        self.body = body
        self.done = False
        self.value: Any = None
        self.error: BaseException | None = None


class SQLStore:
    """The shared implementation of ``rxchat.stores.ConversationStore``.

    Writes are group-committed: a write that arrives while another transaction is
    committing waits, and every write waiting when that one ends is done in the next
    transaction together, each under its own savepoint (one failing leaves the others
    to commit). A write returns once its transaction committed; many sessions sharing
    one store pay one commit (one fsync) per batch, not one each.

    Attributes:
        write_transactions: How many write transactions this store object ran (a
            group commit counts once); the tests count batches with it.
    """

    _lock_row = ""
    """Appended to the read of the conversation row a save changes (``FOR UPDATE``
    where rows can be locked; SQLite locks the whole file for the transaction)."""

    _chain_cause = True
    """Whether a translated driver error is chained (PostgreSQL's may name the DSN)."""

    _writes: threading.Condition
    _queue: builtins.list[_Job]
    _leading: bool
    write_transactions: int

    def _init_writes(self) -> None:
        self._writes = threading.Condition(threading.Lock())
        self._queue = []
        self._leading = False
        self.write_transactions = 0

    def _transaction(self, *, write: bool) -> AbstractContextManager[Tx]:
        raise NotImplementedError

    def _translate(self, error: Exception) -> StoreError | None:
        """A driver's error as a ``StoreError`` (``ConnectionLostError`` when the server
        closed the connection), or None if it is not the driver's."""
        raise NotImplementedError

    def _where(self) -> str:
        """The store as messages name it (a path, a host without password)."""
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

    # -- running transactions -----------------------------------------------------------

    def _failure(self, error: Exception) -> StoreError | None:
        if isinstance(error, StoreError):
            return error
        translated = self._translate(error)
        if translated is not None:
            return translated
        if isinstance(error, (UnicodeError, ValueError, OverflowError)):
            return StoreError(
                f"The conversation store {self._where()} could not store or look up a "
                f"value ({type(error).__name__}: {error}); check the arguments given."
            )
        return None

    def _run(self, body: Callable[[Tx], T], *, write: bool) -> T:
        """``body`` in one transaction; once more on a new connection if the server had
        closed the old one. Every failure is a ``StoreError``."""
        for attempt in (1, 2):
            try:
                with self._transaction(write=write) as tx:
                    if write:
                        self.write_transactions += 1
                    return body(tx)
            except Exception as exc:  # every failure becomes a StoreError
                failure = self._failure(exc)
                if failure is None:
                    raise
                if isinstance(failure, ConnectionLostError) and attempt == 1:
                    continue
                if failure is exc:
                    raise
                raise failure from (exc if self._chain_cause else None)
        raise AssertionError("unreachable")

    def _read(self, body: Callable[[Tx], T]) -> T:
        return self._run(body, write=False)

    def _write(self, body: Callable[[Tx], T]) -> T:
        """Run ``body`` in the next group commit and return what it returned."""
        job = _Job(body)
        with self._writes:
            self._queue.append(job)
            self._writes.notify_all()
            while self._leading and not job.done:
                self._writes.wait()
            if job.done:
                batch: builtins.list[_Job] = []
            else:
                self._leading = True
                batch, self._queue = self._queue, []
        if batch:
            try:
                self._commit(batch)
            finally:
                with self._writes:
                    self._leading = False
                    for each in batch:
                        each.done = True
                    self._writes.notify_all()
        if job.error is not None:
            raise job.error
        return cast(T, job.value)

    def _commit(self, batch: builtins.list[_Job]) -> None:
        """Run every job of ``batch`` in one transaction, each in its own savepoint."""

        def run_all(tx: Tx) -> None:
            for job in batch:
                job.error = None
                if len(batch) == 1:
                    job.value = job.body(tx)
                    continue
                tx.query("SAVEPOINT rxchat_write")
                try:
                    job.value = job.body(tx)
                except Exception as exc:  # reported to that job's caller
                    failure = self._failure(exc)
                    if failure is None or isinstance(failure, ConnectionLostError):
                        raise
                    tx.query("ROLLBACK TO SAVEPOINT rxchat_write")
                    job.error = failure
                tx.query("RELEASE SAVEPOINT rxchat_write")

        try:
            self._run(run_all, write=True)
        except BaseException as exc:
            for job in batch:
                job.error = exc

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
        model = None if model is None else storable(model)
        title = None if title is None else storable(title)

        def insert(tx: Tx) -> None:  # run again after a lost connection: at most once
            stamp = _next_stamp(tx)
            tx.query(
                "INSERT INTO rxchat_conversations (id, title, title_auto, model, created, "
                "updated, message_count, usage) VALUES (?, ?, ?, ?, ?, ?, 0, NULL) "
                "ON CONFLICT (id) DO NOTHING",
                (conversation_id, title, title is None, model, stamp, stamp),
            )

        self._write(insert)
        return conversation_id

    def save_messages(
        self, conversation_id: str, messages: Sequence[Message], *,
        model: str | None = None, expected: Sequence[Message] | None = None,
    ) -> None:
        """Make the stored messages exactly ``messages``, in one transaction.

        Messages already stored unchanged at the start are not rewritten: appending a
        turn inserts only its new rows; an undo or a regenerated reply replaces the tail.

        With ``expected`` (the history this writer last read or saved), the save is a
        compare-and-set: if the stored messages are neither ``expected`` nor already
        ``messages``, another writer changed the conversation and nothing is written.
        A save retried after its first attempt did commit finds ``messages`` stored,
        and succeeds.

        Args:
            conversation_id: The conversation.
            messages: Its whole history, oldest first.
            model: The model now in use (kept as it was if None).
            expected: The stored history this save replaces; None replaces whatever
                is stored.

        Raises:
            ConversationNotFoundError: No conversation has this id.
            StoreConflict: ``expected`` was given and another writer changed the
                conversation since.
            StoreError: The store could not be written.
        """
        _check_id(conversation_id)
        rows = [MessageRow.of(m) for m in messages]
        digests = [r.digest for r in rows]
        base = None if expected is None else _digests_of(expected, messages, digests)
        title = title_of(messages)
        usage = usage_json(total_usage(messages))
        model = None if model is None else storable(model)

        def save(tx: Tx) -> None:
            found = tx.query(
                f"SELECT title_auto FROM rxchat_conversations WHERE id = ?{self._lock_row}",
                (conversation_id,),
            )
            if not found:
                raise ConversationNotFoundError(conversation_id)
            old = [d for (d,) in tx.query(
                "SELECT digest FROM rxchat_messages WHERE conversation_id = ? "
                "ORDER BY position", (conversation_id,),
            )]
            if base is not None and old != base:
                if old == digests:
                    return  # already saved: this save's own earlier attempt
                raise StoreConflict(conversation_id)
            keep = changed_from(old, rows)
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
            tx.query(
                "UPDATE rxchat_conversations SET updated = ?, message_count = ?, usage = ?, "
                "model = COALESCE(?, model), "
                "title = CASE WHEN title_auto THEN ? ELSE title END WHERE id = ?",
                (_next_stamp(tx), len(rows), usage, model,
                 title if found[0][0] else None, conversation_id),
            )

        self._write(save)

    def delete(self, conversation_id: str) -> None:
        """Delete a conversation and its messages.

        Raises:
            ConversationNotFoundError: No conversation has this id.
            StoreError: The store could not be written.
        """
        _check_id(conversation_id)
        attempts = 0

        def remove(tx: Tx) -> None:
            nonlocal attempts
            attempts += 1
            tx.query("DELETE FROM rxchat_messages WHERE conversation_id = ?", (conversation_id,))
            gone = tx.query(
                "DELETE FROM rxchat_conversations WHERE id = ? RETURNING id", (conversation_id,)
            )
            if not gone and attempts == 1:  # a retry finds its own earlier delete done
                raise ConversationNotFoundError(conversation_id)

        self._write(remove)

    # -- reading ----------------------------------------------------------------------

    def get(self, conversation_id: str) -> Conversation:
        """A conversation with all its messages.

        Raises:
            ConversationNotFoundError: No conversation has this id.
            StoreError: The store could not be read.
        """
        _check_id(conversation_id)

        def read(tx: Tx) -> tuple[builtins.list[Row], builtins.list[Row]]:
            found = tx.query(f"{_SUMMARY} WHERE id = ?", (conversation_id,))
            if not found:
                raise ConversationNotFoundError(conversation_id)
            return found, tx.query(
                "SELECT data FROM rxchat_messages WHERE conversation_id = ? ORDER BY position",
                (conversation_id,),
            )

        found, data = self._read(read)
        summary = _summary(found[0])
        messages = tuple(message_from_json(text) for (text,) in data)
        return Conversation(**vars(summary), messages=messages)

    def latest(self) -> str | None:
        """The id of the conversation that changed last, or None if there is none.

        Raises:
            StoreError: The store could not be read.
        """
        rows = self._read(lambda tx: tx.query(
            "SELECT id FROM rxchat_conversations ORDER BY updated DESC, id DESC LIMIT 1"
        ))
        return str(rows[0][0]) if rows else None

    def list(self, limit: int = 20) -> builtins.list[ConversationSummary]:
        """The conversations, the one that changed last first.

        Args:
            limit: At most this many.

        Raises:
            StoreError: The store could not be read.
        """
        rows = self._read(
            lambda tx: tx.query(f"{_SUMMARY} ORDER BY updated DESC, id DESC LIMIT ?", (limit,))
        )
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
        rows = self._read(lambda tx: self._search_ids(tx, terms, limit))
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


def _check_id(conversation_id: str) -> None:
    """An id no store can hold (NUL, a lone surrogate) names no conversation."""
    if not isinstance(conversation_id, str) or storable(conversation_id) != conversation_id:
        raise ConversationNotFoundError(str(conversation_id))


def _digests_of(
    expected: Sequence[Message], messages: Sequence[Message], digests: Sequence[str]
) -> builtins.list[str]:
    """The digests of ``expected``, reusing those of ``messages`` where they are the
    same objects (a session's next history shares its earlier messages)."""
    return [
        digests[i] if i < len(messages) and message is messages[i]
        else MessageRow.of(message).digest
        for i, message in enumerate(expected)
    ]


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
