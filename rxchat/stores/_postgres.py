"""``PostgresStore``: conversations in a PostgreSQL database, for services on many machines.

It needs psycopg 3 (``pip install 'rxchat[postgres]'``). The tables are those of the
SQLite store, prefixed ``rxchat_`` so they can live in an application's own database;
the schema version is kept in ``rxchat_schema`` and ``MIGRATIONS`` run under an
advisory lock, so several machines starting at once migrate exactly once. Search uses
a GIN index on ``to_tsvector('simple', text)``: whole words, any case, no stemming,
as the SQLite store matches them.

The DSN's password never appears in ``repr`` or in error messages.
"""

from __future__ import annotations

import builtins
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ..errors import StoreError
from ._sql import ConnectionLostError, SQLStore, Tx, migrate, summary_columns

if TYPE_CHECKING:
    import psycopg

__all__ = ["MIGRATIONS", "PostgresStore"]

MIGRATION_LOCK = 0x72786368  # "rxch": the advisory lock held while migrating

MIGRATIONS: list[tuple[str, ...]] = [
    (  # 1: conversations and their messages
        "CREATE TABLE rxchat_conversations (id TEXT PRIMARY KEY, title TEXT, "
        "title_auto BOOLEAN NOT NULL, model TEXT, created BIGINT NOT NULL, "
        "updated BIGINT NOT NULL, message_count INTEGER NOT NULL, usage TEXT)",
        "CREATE INDEX rxchat_conversations_updated ON rxchat_conversations (updated)",
        "CREATE TABLE rxchat_messages (conversation_id TEXT NOT NULL, position INTEGER NOT "
        "NULL, role TEXT NOT NULL, data TEXT NOT NULL, text TEXT NOT NULL, digest TEXT NOT "
        "NULL, PRIMARY KEY (conversation_id, position))",
    ),
    (  # 2: full-text search over the messages' text
        "CREATE INDEX rxchat_messages_text ON rxchat_messages USING GIN "
        "(to_tsvector('simple', text))",
    ),
]
"""Schema changes in order; ``rxchat_schema.version`` counts those applied."""


class _PostgresTx:
    def __init__(self, cursor: psycopg.Cursor[Any]) -> None:
        self._cursor = cursor

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self._cursor.execute(sql.replace("?", "%s"), tuple(params))
        return self._cursor.fetchall() if self._cursor.description is not None else []

    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self._cursor.executemany(sql.replace("?", "%s"), rows)


class PostgresStore(SQLStore):
    """Conversations in PostgreSQL (psycopg 3; the ``postgres`` extra).

    One store object holds one connection, shared by its threads one transaction at a
    time (writes from many threads are committed together, in one transaction). When
    the server closed the connection (restart, failover, idle timeout) the call that
    finds out reconnects and runs once more; a save tried again recognises its own
    earlier write, if that did commit.

    Args:
        dsn: A libpq connection string or URL, e.g.
            ``postgresql://app@db.internal/chat`` or ``host=/run/postgresql dbname=chat``.

    Raises:
        StoreError: psycopg is not installed, the server cannot be reached, or the
            schema was written by a newer rxchat.
    """

    _lock_row = " FOR UPDATE"
    _chain_cause = False

    def __init__(self, dsn: str) -> None:
        try:
            import psycopg
        except ImportError as exc:
            raise StoreError(
                "PostgresStore needs psycopg 3: pip install 'rxchat[postgres]'."
            ) from exc
        self._psycopg = psycopg
        self._dsn = dsn
        self._lock = threading.Lock()
        self._connection: psycopg.Connection[Any] | None = None
        self._init_writes()
        try:
            self._run(self._migrate, write=True)
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return f"PostgresStore({_without_password(self._dsn)!r})"

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def _where(self) -> str:
        return f"at {_without_password(self._dsn)!r}"

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[Tx]:
        with self._lock:
            connection = self._connect()
            with connection.transaction(), connection.cursor() as cursor:
                yield _PostgresTx(cursor)

    def _connect(self) -> psycopg.Connection[Any]:
        if self._connection is None or self._connection.closed or self._connection.broken:
            if self._connection is not None:
                self._connection.close()
            self._connection = None
            self._connection = self._psycopg.connect(self._dsn, autocommit=True)
        return self._connection

    def _search_ids(
        self, tx: Tx, terms: builtins.list[str], limit: int
    ) -> builtins.list[tuple[Any, ...]]:
        return tx.query(
            f"{summary_columns()} WHERE id IN (SELECT conversation_id FROM rxchat_messages "
            "WHERE to_tsvector('simple', text) @@ plainto_tsquery('simple', ?)) "
            "ORDER BY updated DESC, id DESC LIMIT ?",
            (" ".join(terms), limit),
        )

    def _migrate(self, tx: Tx) -> None:
        tx.query("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))
        tx.query("CREATE TABLE IF NOT EXISTS rxchat_schema (version INTEGER NOT NULL)")
        rows = tx.query("SELECT version FROM rxchat_schema")
        version = int(rows[0][0]) if rows else 0
        if not rows:
            tx.query("INSERT INTO rxchat_schema (version) VALUES (0)")
        migrate(tx, version, MIGRATIONS, self._where(),
                lambda number: tx.query("UPDATE rxchat_schema SET version = ?", (number,)))

    def _translate(self, error: Exception) -> StoreError | None:
        """psycopg errors become StoreError naming the server (never the password);
        ``ConnectionLostError`` when a connection that worked was closed by the server."""
        if not isinstance(error, self._psycopg.Error):
            return None
        where = _without_password(self._dsn)
        detail = _without_password(str(error).strip().splitlines()[0] if str(error) else "")
        operational = isinstance(error, self._psycopg.OperationalError)
        hint = (
            "check that the server runs and the DSN is right" if operational
            else "check the database and its permissions"
        )
        connection = self._connection
        lost = operational and connection is not None and (connection.broken or connection.closed)
        kind = ConnectionLostError if lost else StoreError
        return kind(
            f"The conversation store at {where!r} failed: {detail or type(error).__name__};"
            f" {hint}."
        )


def _without_password(text: str) -> str:
    """``text`` with any DSN password (``password=...`` or ``user:pass@``) hidden."""
    text = re.sub(r"(password\s*=\s*)('[^']*'|\S+)", r"\1***", text, flags=re.I)
    return re.sub(r"(://[^:/@\s]*:)[^@\s]*@", r"\1***@", text)
