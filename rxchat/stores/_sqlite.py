"""``SQLiteStore``: conversations in one SQLite file, safe for several processes at once.

The file is opened in WAL mode (readers never wait for the writer) with a busy timeout,
and every write is one ``BEGIN IMMEDIATE`` transaction, so two processes appending
turns to the same file both succeed, one after the other. ``synchronous=FULL``: a
transaction that returned is on disk, whatever happens to the process or the machine.

The schema is versioned with ``PRAGMA user_version``; ``MIGRATIONS`` brings an
older file up to date when it is opened, and a file from a newer rxchat is refused
rather than damaged. Search uses an FTS5 index kept in step with the messages by
triggers.
"""

from __future__ import annotations

import builtins
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from ..errors import StoreError
from ._paths import default_database, private_file
from ._sql import SQLStore, Tx, migrate, summary_columns

__all__ = ["BUSY_TIMEOUT_S", "MIGRATIONS", "SQLiteStore"]

BUSY_TIMEOUT_S = 30.0
"""How long a write waits for another process's write to finish before failing."""

MIGRATIONS: list[tuple[str, ...]] = [
    (  # 1: conversations and their messages
        "CREATE TABLE rxchat_conversations (id TEXT PRIMARY KEY, title TEXT, "
        "title_auto INTEGER NOT NULL, model TEXT, created INTEGER NOT NULL, "
        "updated INTEGER NOT NULL, message_count INTEGER NOT NULL, usage TEXT)",
        "CREATE INDEX rxchat_conversations_updated ON rxchat_conversations (updated)",
        "CREATE TABLE rxchat_messages (id INTEGER PRIMARY KEY, conversation_id TEXT NOT "
        "NULL, position INTEGER NOT NULL, role TEXT NOT NULL, data TEXT NOT NULL, "
        "text TEXT NOT NULL, digest TEXT NOT NULL, UNIQUE (conversation_id, position))",
    ),
    (  # 2: full-text search over the messages' text (existing messages indexed too)
        "CREATE VIRTUAL TABLE rxchat_messages_fts USING fts5(text, content='rxchat_messages',"
        " content_rowid='id', tokenize='unicode61 remove_diacritics 0')",
        "CREATE TRIGGER rxchat_messages_ai AFTER INSERT ON rxchat_messages BEGIN "
        "INSERT INTO rxchat_messages_fts (rowid, text) VALUES (new.id, new.text); END",
        "CREATE TRIGGER rxchat_messages_ad AFTER DELETE ON rxchat_messages BEGIN "
        "INSERT INTO rxchat_messages_fts (rxchat_messages_fts, rowid, text) "
        "VALUES ('delete', old.id, old.text); END",
        "INSERT INTO rxchat_messages_fts (rxchat_messages_fts) VALUES ('rebuild')",
    ),
]
"""Schema changes in order; the file's ``user_version`` counts those applied."""


class _SQLiteTx:
    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._connection.execute(sql, tuple(params)).fetchall()

    def many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._connection.executemany(sql, rows)


class SQLiteStore(SQLStore):
    """Conversations in a SQLite file (the embedded default store).

    One store object may be used from several threads; several processes may use the
    same file at once.

    Args:
        path: The database file; by default ``conversations.db`` in rxchat's data
            directory (``RXCHAT_DATA_DIR``, else the platform's user data directory).
            A new file is created readable by its owner only (0600, in 0700
            directories created for it).
        read_only: Open the file for reading only (it must exist): listing,
            showing and searching work where the file or its directory cannot be
            written; a write raises ``StoreError``.

    Raises:
        StoreError: The file cannot be created or opened, is not an rxchat store, or
            was written by a newer rxchat.
    """

    def __init__(
        self, path: str | os.PathLike[str] | None = None, *, read_only: bool = False
    ) -> None:
        self.path = Path(path) if path is not None else default_database()
        self.read_only = read_only
        self._lock = threading.Lock()
        self._init_writes()
        try:
            if read_only:
                self._connection = _open_read_only(self.path)
            else:
                private_file(self.path)
                self._connection = sqlite3.connect(
                    self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                    check_same_thread=False,
                )
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(
                f"The conversation store {str(self.path)!r} could not be opened ({exc}); "
                "check the path and its permissions."
            ) from exc
        try:
            self._prepare()
        except BaseException:
            self._connection.close()
            raise

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._connection.close()

    def _where(self) -> str:
        return repr(str(self.path))

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[Tx]:
        with self._lock:
            connection = self._connection
            connection.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield _SQLiteTx(connection)
            except BaseException:
                with suppress(sqlite3.Error):
                    connection.execute("ROLLBACK")
                raise
            try:
                connection.execute("COMMIT")
            except BaseException:
                with suppress(sqlite3.Error):
                    connection.execute("ROLLBACK")
                raise

    def _prepare(self) -> None:
        """WAL, full sync and an up-to-date schema (a read-only store only checks it)."""
        if not self.read_only:
            try:
                self._connection.execute("PRAGMA journal_mode=WAL")
                self._connection.execute("PRAGMA synchronous=FULL")
            except sqlite3.Error as exc:
                raise self._translate(exc) or StoreError(str(exc)) from exc
        self._run(self._migrate, write=not self.read_only)

    def _migrate(self, tx: Tx) -> None:
        (version,) = tx.query("PRAGMA user_version")[0]
        if self.read_only and version != len(MIGRATIONS):
            if version > len(MIGRATIONS):
                migrate(tx, version, MIGRATIONS, self._where(), lambda number: None)
            raise StoreError(
                f"The conversation store {self._where()} is read-only and its schema "
                f"(version {version}) is older than this rxchat's; open it once writable "
                "to bring it up to date."
            )
        migrate(tx, version, MIGRATIONS, self._where(),
                lambda number: tx.query(f"PRAGMA user_version = {number}"))

    def _translate(self, error: Exception) -> StoreError | None:
        """sqlite3 errors become StoreError naming the file and what to do."""
        if not isinstance(error, sqlite3.Error):
            return None
        hint = {
            "database is locked": "another process held it for longer than "
            f"{BUSY_TIMEOUT_S:g} s; try again",
            "file is not a database": "it is not an rxchat store; choose another path",
            "attempt to write a readonly database": "it is read-only; reading it works "
            "(rxchat logs list), or pass --no-log",
        }.get(str(error), "check the disk and the file's permissions")
        return StoreError(f"The conversation store {self._where()} failed: {error}; {hint}.")

    def _search_ids(
        self, tx: Tx, terms: builtins.list[str], limit: int
    ) -> builtins.list[tuple[Any, ...]]:
        query = " ".join('"' + term.replace('"', '""') + '"' for term in terms)
        return tx.query(
            f"{summary_columns()} WHERE id IN (SELECT m.conversation_id FROM "
            "rxchat_messages_fts f JOIN rxchat_messages m ON m.id = f.rowid "
            "WHERE rxchat_messages_fts MATCH ?) ORDER BY updated DESC, id DESC LIMIT ?",
            (query, limit),
        )


def _open_read_only(path: Path) -> sqlite3.Connection:
    """``path`` opened for reading only.

    A WAL file can be read without write access once its ``-shm`` and ``-wal``
    sidecars exist; where they do not and the directory is read-only, nothing can be
    writing it, so it is read as immutable (without locks).
    """
    uri = path.resolve().as_uri()
    connection = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S,
                                 isolation_level=None, check_same_thread=False)
    try:
        connection.execute("PRAGMA user_version").fetchall()
    except sqlite3.OperationalError:
        connection.close()
        if Path(f"{path}-wal").exists():
            raise
        connection = sqlite3.connect(f"{uri}?mode=ro&immutable=1", uri=True,
                                     isolation_level=None, check_same_thread=False)
    return connection
