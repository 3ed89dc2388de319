"""Any text a session commits round-trips identically through both stores, and a
store failure is always a ``StoreError``; the row cache is bounded in bytes."""

from __future__ import annotations

import gc
import tracemalloc
from typing import Any

import pytest
import reactivex
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rxchat import ChatSession, FunctionCall, Message, ToolCall
from rxchat.errors import ConversationNotFoundError, StoreError
from rxchat.stores import ConversationStore, _records
from rxchat.stores._records import ROW_CACHE_BYTES, MessageRow

NASTY = "nul\x00 lone\ud83d high \ude00 low \ud83d\ude00 pair-as-two 😀 é \u2028 \x1b]52;c;x\x07"


def test_nul_and_surrogates_round_trip(store: ConversationStore) -> None:
    """0.2: PostgreSQL refused U+0000; both raised UnicodeEncodeError on a surrogate."""
    messages = (
        Message(role="system", content="sys\x00"),
        Message(role="user", content=NASTY, name="n\x00\ud800"),
        Message(content=NASTY, reasoning_content="think\x00\udfff", finish_reason="stop"),
        Message(content=None, tool_calls=(ToolCall(0, "c\x00", "function",
                                                    FunctionCall("f", '{"a": "\x00\ud83d"}')),)),
        Message(role="tool", content="\x00", tool_call_id="c\x00"),
    )
    cid = store.create(model="model\x00\ud83d", title=None)
    store.save_messages(cid, messages, model="m\x00")
    got = store.get(cid)
    assert got.messages == messages
    assert got.title is not None and "\x00" not in got.title and "\ufffd" in got.title
    assert got.model == "m\ufffd"
    assert store.export(cid)["messages"] == [m.to_dict() for m in messages]
    assert [c.id for c in store.search("pair")] == [cid]
    store.save_messages(cid, (*messages, Message(role="user", content="more\x00")),
                        expected=messages)  # and every later save works
    assert store.get(cid).messages[-1].content == "more\x00"


def test_a_given_title_with_nul_is_stored(store: ConversationStore) -> None:
    cid = store.create(title="a\x00b")
    assert store.get(cid).title == "a\ufffdb"


@pytest.mark.parametrize("bad", ["a\x00b", "\ud83d", "x" * 10_000])
def test_an_id_no_store_can_hold_is_not_found(store: ConversationStore, bad: str) -> None:
    for call in (store.get, store.export, store.delete,
                 lambda cid: store.save_messages(cid, ())):
        with pytest.raises(ConversationNotFoundError):
            call(bad)


def test_a_message_that_is_not_json_is_a_store_error(store: ConversationStore) -> None:
    cid = store.create()
    odd = Message.from_dict({"role": "user", "content": [{"type": "text", "text": object()}]})
    with pytest.raises(StoreError, match="cannot be stored"):
        store.save_messages(cid, (odd,))
    assert store.get(cid).messages == ()


text = st.text(st.one_of(st.sampled_from(["\x00", "\ud83d", "\ude00", "😀", "\x1b"]),
                         st.characters(codec=None, categories=None)), max_size=40)


def echo(params: dict[str, Any], **_: Any) -> reactivex.Observable[Message]:
    """Replies with the asked text (itself, reversed), split into two deltas."""
    asked = params["messages"][-1]
    content = asked.content if isinstance(asked, Message) else asked["content"]
    reply = content[::-1]
    middle = len(reply) // 2
    return reactivex.of(Message(role="assistant", content=reply[:middle]),
                        Message(content=reply[middle:], finish_reason="stop"))


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(asks=st.lists(text, min_size=1, max_size=3), extra=text)
def test_any_text_through_a_session_and_back(
    store: ConversationStore, asks: list[str], extra: str,
) -> None:
    """Random text, surrogates and NUL included: what the session committed is what
    comes back, and a resumed session holds it all."""
    session = ChatSession(system=f"sys {extra}", store=store, complete=echo)
    try:
        for ask in asks:
            session.send(ask).run()
            assert session.store_error is None
        cid = session.conversation_id
        assert cid is not None
        assert store.get(cid).messages == session.messages
    finally:
        session.dispose()
    resumed = ChatSession(store=store, conversation_id=cid, complete=echo)
    try:
        assert resumed.messages == session.messages
    finally:
        resumed.dispose()
    # and straight through the store API, with text a session would have cleaned
    direct = store.create()
    raw = (Message(role="user", content=extra), Message(content=extra[::-1]))
    store.save_messages(direct, raw, expected=())
    assert store.get(direct).messages == raw


def test_the_row_cache_holds_a_bounded_number_of_bytes() -> None:
    """0.2: 1,200 distinct 50 KB messages stayed cached (121 MB) after use."""
    _records._ROWS.clear()
    gc.collect()
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        for i in range(1200):
            MessageRow.of(Message(role="user", content=f"{i:05} " + "x" * 50_000))
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - start
    finally:
        tracemalloc.stop()
    assert held < 2 * ROW_CACHE_BYTES
    assert _records._ROWS.size <= ROW_CACHE_BYTES
    big = Message(content="y" * ROW_CACHE_BYTES)
    assert MessageRow.of(big).data.endswith('"role": "assistant"}')
    assert _records._ROWS.size <= ROW_CACHE_BYTES
