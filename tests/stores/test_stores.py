"""The shared suite every conversation store passes: SQLite and PostgreSQL alike."""

from __future__ import annotations

import json
import pickle
import threading
from pathlib import Path

import pytest

from rxchat import ChatSession, FunctionCall, Message, ToolCall, Usage
from rxchat.errors import ConversationNotFoundError, RxChatError, StoreError
from rxchat.stores import ConversationStore, _postgres, _sqlite

from .conftest import Reopen

USER = Message(role="user", content="My name is Ada and I like owls.")
REPLY = Message(
    content="Hello Ada.", reasoning_content="She said her name.", finish_reason="stop",
    usage=Usage(10, 3, 13, {"prompt_tokens_details": {"cached_tokens": 4}}),
)
TOOL_CALL = Message(
    content=None, finish_reason="tool_calls",
    tool_calls=(ToolCall(0, "call_1", "function", FunctionCall("lookup", '{"q": "owls"}')),),
    usage=Usage(20, 5, 25),
)
TOOL_RESULT = Message(role="tool", content="Owls are birds.", tool_call_id="call_1")
TURN = (USER, REPLY)


def test_a_conversation_round_trips_every_message_field(store: ConversationStore) -> None:
    messages = (Message(role="system", content="Be brief."), *TURN,
                Message(role="user", content="What are owls?"), TOOL_CALL, TOOL_RESULT,
                Message(content="Birds.", name="helper", finish_reason="stop"))
    cid = store.create(model="m-1")
    store.save_messages(cid, messages)
    got = store.get(cid)
    assert got.messages == messages
    assert (got.id, got.model, got.message_count) == (cid, "m-1", len(messages))
    assert got.usage == Usage(30, 8, 38)
    assert got.created <= got.updated and got.created.tzinfo is not None


def test_the_title_is_the_first_user_message_shortened(store: ConversationStore) -> None:
    cid = store.create()
    assert store.get(cid).title is None
    long = Message(role="user", content="  Please   summarise\nthis " + "word " * 30)
    store.save_messages(cid, (Message(role="system", content="sys"), long, REPLY))
    title = store.get(cid).title
    assert title is not None and title.startswith("Please summarise this word")
    assert len(title) == 60 and title.endswith("…")
    given = store.create(title="Trip plans")
    store.save_messages(given, TURN)
    assert store.get(given).title == "Trip plans"


def test_appending_keeps_the_stored_rows_and_undo_shortens(store: ConversationStore) -> None:
    cid = store.create()
    store.save_messages(cid, TURN)
    second = (Message(role="user", content="And owls?"), Message(content="Yes."))
    store.save_messages(cid, TURN + second)
    assert store.get(cid).messages == TURN + second
    store.save_messages(cid, TURN)  # undo
    assert store.get(cid).messages == TURN
    regenerated = (USER, Message(content="Hi Ada!"))
    store.save_messages(cid, regenerated, model="m-2")
    got = store.get(cid)
    assert (got.messages, got.model, got.usage) == (regenerated, "m-2", None)
    store.save_messages(cid, ())
    assert store.get(cid).messages == ()


def test_an_append_does_not_rewrite_earlier_rows(kind: str, store: ConversationStore) -> None:
    cid = store.create()
    store.save_messages(cid, TURN)
    before = _row_ids(kind, store, cid)
    store.save_messages(cid, (*TURN, Message(role="user", content="more")))
    after = _row_ids(kind, store, cid)
    assert after[:2] == before and len(after) == 3


def _row_ids(kind: str, store: ConversationStore, cid: str) -> list[object]:
    """The physical identity of each stored message row (rowid / ctid)."""
    column = "id" if kind == "sqlite" else "ctid::text"
    with store._transaction(write=False) as tx:  # type: ignore[attr-defined]
        rows = tx.query(
            f"SELECT {column} FROM rxchat_messages WHERE conversation_id = ? ORDER BY position",
            (cid,),
        )
    return [r[0] for r in rows]


def test_list_is_newest_first_and_latest_is_the_last_changed(
    store: ConversationStore,
) -> None:
    assert store.latest() is None and store.list() == []
    first, second, third = store.create(), store.create(), store.create()
    assert [c.id for c in store.list()] == [third, second, first]
    store.save_messages(first, TURN)
    assert store.latest() == first
    assert [c.id for c in store.list(limit=2)] == [first, third]
    summary = store.list()[0]
    assert (summary.message_count, summary.title) == (2, "My name is Ada and I like owls.")


def test_search_finds_words_in_any_message_ignoring_case(store: ConversationStore) -> None:
    owls = store.create()
    store.save_messages(owls, TURN)
    cats = store.create()
    store.save_messages(cats, (Message(role="user", content="Tell me about cats"),
                               Message(content="Cats purr.", reasoning_content="felines")))
    assert [c.id for c in store.search("OWLS")] == [owls]
    assert [c.id for c in store.search("purr")] == [cats]
    assert [c.id for c in store.search("felines")] == [cats]  # reasoning is searched
    assert [c.id for c in store.search("ada hello")] == [owls]  # every word, any message
    assert store.search("ada purr") == []
    assert store.search("zebra") == []
    assert store.search('"unbalanced AND ( * -') == []  # no query syntax leaks through
    assert store.search("") == []
    store.save_messages(owls, ())
    assert store.search("owls") == []  # replaced messages leave the index


def test_export_is_json_that_chat_session_load_reads(
    store: ConversationStore, tmp_path: Path
) -> None:
    cid = store.create(model="m-1")
    store.save_messages(cid, (Message(role="system", content="Be brief."), *TURN))
    document = store.export(cid)
    path = tmp_path / "export.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    assert (document["id"], document["model"], document["title"]) == (
        cid, "m-1", USER.content)
    assert document["usage"] == {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13}
    session = ChatSession.load(path)
    assert session.messages == store.get(cid).messages
    assert session.model == "m-1"


def test_delete_removes_it_from_get_list_and_search(store: ConversationStore) -> None:
    keep, gone = store.create(), store.create()
    store.save_messages(gone, TURN)
    store.delete(gone)
    assert [c.id for c in store.list()] == [keep]
    assert store.search("ada") == []
    with pytest.raises(ConversationNotFoundError):
        store.get(gone)


@pytest.mark.parametrize("call", ["get", "save_messages", "export", "delete"])
def test_an_unknown_id_is_a_clear_error(store: ConversationStore, call: str) -> None:
    method = getattr(store, call)
    with pytest.raises(ConversationNotFoundError) as raised:
        method("nope", ()) if call == "save_messages" else method("nope")
    assert isinstance(raised.value, StoreError) and isinstance(raised.value, RxChatError)
    assert "'nope'" in str(raised.value) and "rxchat logs list" in str(raised.value)
    assert pickle.loads(pickle.dumps(raised.value)).conversation_id == "nope"


def test_a_failed_save_changes_nothing(store: ConversationStore) -> None:
    cid = store.create()
    store.save_messages(cid, TURN)
    with pytest.raises(ConversationNotFoundError):
        store.save_messages("nope", TURN)
    assert store.get(cid).messages == TURN


def test_another_store_object_sees_the_writes(reopen: Reopen) -> None:
    one, two = reopen(), reopen()
    cid = one.create()
    one.save_messages(cid, TURN)
    assert two.get(cid).messages == TURN
    assert two.latest() == cid


def test_threads_share_one_store(store: ConversationStore) -> None:
    ids = [store.create() for _ in range(4)]

    def work(cid: str) -> None:
        history: tuple[Message, ...] = ()
        for i in range(10):
            history += (Message(role="user", content=f"q{i}"), Message(content=f"a{i}"))
            store.save_messages(cid, history)

    threads = [threading.Thread(target=work, args=(cid,)) for cid in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert all(len(store.get(cid).messages) == 20 for cid in ids)


def test_an_older_schema_is_migrated_and_its_messages_become_searchable(
    reopen: Reopen, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = _sqlite if kind == "sqlite" else _postgres
    with monkeypatch.context() as patch:
        patch.setattr(module, "MIGRATIONS", module.MIGRATIONS[:1])
        old = reopen()
        cid = old.create()
        old.save_messages(cid, TURN)
        old.close()
    new = reopen()
    assert [c.id for c in new.search("owls")] == [cid]
    assert new.get(cid).messages == TURN


def test_a_newer_schema_is_refused_and_left_alone(
    reopen: Reopen, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = _sqlite if kind == "sqlite" else _postgres
    store = reopen()
    store.close()
    with monkeypatch.context() as patch:
        patch.setattr(module, "MIGRATIONS", [*module.MIGRATIONS, ("SELECT 1",)])
        reopen().close()
    with pytest.raises(StoreError, match=r"newer than this rxchat knows.*upgrade rxchat"):
        reopen()


def test_content_given_as_parts_is_stored_too(store: ConversationStore) -> None:
    parts = Message.from_dict({"role": "user", "content": [{"type": "text", "text": "hi"}]})
    cid = store.create()
    store.save_messages(cid, (parts,))
    assert store.get(cid).messages == (parts,)
