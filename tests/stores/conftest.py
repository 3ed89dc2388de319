"""The fixtures of the store tests: each test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rxchat.stores import ConversationStore, PostgresStore, SQLiteStore

BACKENDS = ["sqlite", "postgres"]


def open_store(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> ConversationStore:
    if kind == "sqlite":
        return SQLiteStore(tmp_path / "store.db")
    return PostgresStore(request.getfixturevalue("postgres_dsn"))


@pytest.fixture(params=BACKENDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


Reopen = Callable[[], ConversationStore]


@pytest.fixture
def reopen(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Reopen]:
    """A function opening another store object on the same database."""
    opened: list[ConversationStore] = []

    def again() -> ConversationStore:
        store = open_store(kind, request, tmp_path)
        opened.append(store)
        return store

    yield again
    for store in opened:
        store.close()


@pytest.fixture
def store(reopen: Reopen) -> ConversationStore:
    return reopen()


