"""What only the PostgreSQL store promises: no password shown, clear failures."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from rxchat import Message
from rxchat.errors import StoreError
from rxchat.stores import PostgresStore
from rxchat.testing import closed_port


def test_an_unreachable_server_is_a_store_error_without_the_password() -> None:
    dsn = f"postgresql://app:hunter2secret@127.0.0.1:{closed_port()}/chat?connect_timeout=2"
    with pytest.raises(StoreError) as raised:
        PostgresStore(dsn)
    message = str(raised.value)
    assert "hunter2secret" not in message and "***" in message
    assert "check that the server runs" in message
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


def test_the_repr_hides_the_password(postgres_dsn: str) -> None:
    with PostgresStore(postgres_dsn + " password=hunter2secret") as store:
        assert "hunter2secret" not in repr(store) and "password=***" in repr(store)


def test_without_psycopg_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(StoreError, match=r"pip install 'rxchat\[postgres\]'"):
        PostgresStore("host=/nowhere")


def test_a_broken_connection_is_reopened(postgres_dsn: str) -> None:
    with PostgresStore(postgres_dsn) as store:
        cid = store.create()
        store._connection.close()  # type: ignore[union-attr]
        assert store.latest() == cid


def terminate_backend(store: PostgresStore, dsn: str) -> None:
    """Close the store's server connection from a second connection, as a restart,
    a failover or an idle timeout does."""
    import psycopg

    (pid,) = store._read(lambda tx: tx.query("SELECT pg_backend_pid()"))[0]
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


def test_a_call_after_the_server_closed_the_connection_reconnects(postgres_dsn: str) -> None:
    """0.2: the first call after the server closed the connection failed."""
    with PostgresStore(postgres_dsn) as store:
        cid = store.create()
        terminate_backend(store, postgres_dsn)
        assert store.latest() == cid
        terminate_backend(store, postgres_dsn)
        store.save_messages(cid, (Message(role="user", content="hi"),), expected=())
        terminate_backend(store, postgres_dsn)
        assert store.get(cid).messages == (Message(role="user", content="hi"),)
        terminate_backend(store, postgres_dsn)
        other = store.create()
        terminate_backend(store, postgres_dsn)
        store.delete(other)
        assert [c.id for c in store.list()] == [cid]


def test_a_save_whose_commit_was_not_acknowledged_is_not_a_false_conflict(
    postgres_dsn: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The save commits, then the server goes away before the answer arrives: the
    retry finds its own write stored and succeeds."""
    with PostgresStore(postgres_dsn) as store:
        cid = store.create()
        first = (Message(role="user", content="q"), Message(content="a"))
        real = store._transaction
        calls = 0

        @contextmanager
        def commit_then_lose(*, write: bool) -> Iterator[Any]:
            nonlocal calls
            with real(write=write) as tx:
                yield tx
            calls += 1
            if write and calls == 1:  # committed; the answer is lost with the connection
                terminate_backend_now(store, postgres_dsn)
                assert store._connection is not None
                store._connection.execute("SELECT 1")  # raises, as the COMMIT's answer would

        monkeypatch.setattr(store, "_transaction", commit_then_lose)
        store.save_messages(cid, first, expected=())
        monkeypatch.undo()
        assert calls == 2 and store.get(cid).messages == first


def terminate_backend_now(store: PostgresStore, dsn: str) -> None:
    import psycopg

    assert store._connection is not None
    pid = store._connection.info.backend_pid
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


def test_a_server_that_stays_down_is_one_store_error(postgres_dsn: str) -> None:
    with PostgresStore(postgres_dsn) as store:
        terminate_backend(store, postgres_dsn)
        store._dsn = store._dsn.replace("host=", "host=/nonexistent-", 1)
        with pytest.raises(StoreError, match="check that the server runs"):
            store.latest()
