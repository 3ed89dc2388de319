"""Conversation ids by any unique prefix (``resolve_conversation_id``), as git takes them."""

from __future__ import annotations

import builtins
import pickle
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from rxchat import Message
from rxchat.errors import AmbiguousConversationIdError, ConversationNotFoundError
from rxchat.stores import (
    ConversationStore,
    ConversationSummary,
    PostgresStore,
    SQLiteStore,
    resolve_conversation_id,
)


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ConversationStore]:
    opened: ConversationStore
    if request.param == "sqlite":
        opened = SQLiteStore(tmp_path / "c.db")
    else:
        opened = PostgresStore(request.getfixturevalue("postgres_dsn"))
    with opened:
        yield opened


def sharing_a_first_digit(store: ConversationStore) -> tuple[str, list[str]]:
    """Create conversations until two ids share a first hex digit (17 at most)."""
    ids: list[str] = []
    while True:
        ids.append(store.create())
        twins = [i for i in ids if i[0] == ids[-1][0]]
        if len(twins) > 1:
            return ids[-1][0], sorted(twins)


def test_a_unique_prefix_gives_the_whole_id(store: ConversationStore) -> None:
    _, twins = sharing_a_first_digit(store)
    for conversation_id in twins:
        common = next(n for n in range(1, 33) if all(
            t[:n] != conversation_id[:n] for t in twins if t != conversation_id))
        assert resolve_conversation_id(store, conversation_id[:common]) == conversation_id
        assert resolve_conversation_id(store, conversation_id) == conversation_id
        assert resolve_conversation_id(store, f" {conversation_id[:common].upper()} ") == \
            conversation_id


def test_an_ambiguous_prefix_lists_the_candidates_on_one_line(
    store: ConversationStore,
) -> None:
    first, twins = sharing_a_first_digit(store)
    with pytest.raises(AmbiguousConversationIdError) as caught:
        resolve_conversation_id(store, first)
    error = caught.value
    assert isinstance(error, ConversationNotFoundError)  # what callers already handle
    assert error.candidates == tuple(twins[:error.SHOWN + 1])
    assert "\n" not in str(error) and all(t in str(error) for t in twins[:error.SHOWN])
    assert "ambiguous" in str(error) and "type more" in str(error)
    copy = pickle.loads(pickle.dumps(error))
    assert (str(copy), copy.candidates) == (str(error), error.candidates)


def test_many_candidates_are_cut_with_an_ellipsis(store: ConversationStore) -> None:
    shown = AmbiguousConversationIdError.SHOWN
    ids = [store.create() for _ in range(16 * shown + 1)]  # a first digit has shown + 1
    digit = max("0123456789abcdef", key=lambda d: sum(i[0] == d for i in ids))
    starting = sorted(i for i in ids if i[0] == digit)
    with pytest.raises(AmbiguousConversationIdError) as caught:
        resolve_conversation_id(store, digit)
    assert caught.value.candidates == tuple(starting[:shown + 1])
    assert str(caught.value).count(digit) >= shown and ", ...;" in str(caught.value)
    assert starting[shown] not in str(caught.value)


def test_no_match_and_bad_prefixes_are_not_found(store: ConversationStore) -> None:
    conversation_id = store.create()
    other = "0" if conversation_id[0] != "0" else "1"
    for given in (other * 5, "", "   "):
        with pytest.raises(ConversationNotFoundError) as caught:
            resolve_conversation_id(store, given)
        assert not isinstance(caught.value, AmbiguousConversationIdError)
    for given in ("%", "_", conversation_id[:3] + "%"):  # LIKE's wildcards match nothing
        assert resolve_conversation_id(store, given) == given  # not an id: taken whole
        with pytest.raises(ConversationNotFoundError):
            store.get(given)


class ListOnly:
    """A store of the protocol's shape that is not SQL: only ``list`` is used."""

    def __init__(self, ids: Sequence[str]) -> None:
        self.ids = list(ids)

    def list(self, limit: int = 20) -> builtins.list[ConversationSummary]:
        stamp: Any = None
        return [ConversationSummary(i, None, None, stamp, stamp, 0, None)
                for i in self.ids[:limit]]


def test_any_store_of_the_protocol_resolves_through_list() -> None:
    store: Any = ListOnly(["abc1", "abc2", "def0"])
    assert resolve_conversation_id(store, "d") == "def0"
    with pytest.raises(AmbiguousConversationIdError, match="abc1, abc2"):
        resolve_conversation_id(store, "ab")
    with pytest.raises(ConversationNotFoundError):
        resolve_conversation_id(store, "0")


def test_messages_do_not_matter(store: ConversationStore) -> None:
    conversation_id = store.create()
    store.save_messages(conversation_id, [Message(role="user", content="hi")])
    assert resolve_conversation_id(store, conversation_id[:32]) == conversation_id
