"""What only the PostgreSQL store promises: no password shown, clear failures."""

from __future__ import annotations

import sys

import pytest

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
