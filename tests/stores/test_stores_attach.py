"""Write-through from a ChatSession to a store, and resuming from it."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from reactivex import operators as ops
from reactivex.subject import BehaviorSubject

from rxchat import ChatClient, ChatSession, Message
from rxchat._session.persist import SessionFile, write_session
from rxchat.errors import StoreError
from rxchat.stores import SQLiteStore, attach, load_history
from rxchat.testing import STALL, FakeServer, Reply, chunk
from tests.conftest import collect, wait_until


def ask(session: ChatSession, text: str) -> None:
    result = collect(session.send(text))
    assert result.error is None, result.error


def test_each_commit_is_written_through_and_resumes(
    client: ChatClient, server: FakeServer, tmp_path: Path
) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    session = ChatSession(client, system="Be brief.")
    writer = attach(session.history, store, model=lambda: "m-1")
    assert writer.conversation_id is None  # nothing committed: nothing stored
    assert store.list() == []
    server.enqueue(Reply.text("Hello Ada.", reasoning="a name", usage={
        "prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}))
    ask(session, "My name is Ada")
    cid = writer.conversation_id
    assert cid is not None
    assert load_history(store, cid) == session.messages
    assert session.messages[-1].reasoning_content == "a name"
    server.enqueue(Reply.text("Owls."))
    ask(session, "What do I like?")
    assert load_history(store, cid) == session.messages
    session.undo()
    assert wait_until(lambda: len(load_history(store, cid)) == 3)
    stored = store.get(cid)
    assert stored.usage is not None
    assert (stored.model, stored.title, stored.usage.total_tokens) == ("m-1", "My name is Ada", 7)
    writer.dispose()
    session.reset()
    assert len(load_history(store, cid)) == 3  # disposed: no longer written

    # Resume: a new session holding the stored history, attached to the same id.
    path = tmp_path / "resume.json"
    write_session(path, SessionFile(load_history(store, cid)))
    resumed = ChatSession.load(path, client=client)
    again = attach(resumed.history, store, cid)
    server.enqueue(Reply.text("Welcome back."))
    ask(resumed, "I am back")
    assert server.requests[-1].messages[:3] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "My name is Ada"},
        {"role": "assistant", "content": "Hello Ada."},
    ]
    assert [m.content for m in load_history(store, cid)][-2:] == ["I am back", "Welcome back."]
    again.dispose()
    store.close()


def test_a_store_failure_is_reported_and_the_history_goes_on(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    history: BehaviorSubject[tuple[Message, ...]] = BehaviorSubject(())
    failures: list[StoreError] = []
    writer = attach(history, store, "missing-id", on_error=failures.append)
    history.on_next((Message(role="user", content="hi"),))
    assert len(failures) == 2 and "'missing-id'" in str(failures[-1])  # () and the turn
    history.on_next(())
    assert len(failures) == 3  # each change is tried again
    writer.dispose()
    store.close()


def test_a_store_failure_without_a_handler_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    history: BehaviorSubject[tuple[Message, ...]] = BehaviorSubject(())
    attach(history.pipe(ops.skip(1)), store, "gone")
    with caplog.at_level("WARNING", logger="rxchat.stores"):
        history.on_next((Message(role="user", content="hi"),))
    assert "The conversation was not saved" in caplog.text
    store.close()


KILLED = textwrap.dedent("""
    import sys
    from rxchat import ChatClient, ChatSession
    from rxchat.stores import SQLiteStore

    store = SQLiteStore(sys.argv[1])
    session = ChatSession(ChatClient(sys.argv[2], "sk-test", max_retries=0), store=store)
    for turn in range(3):
        session.send(f"question {turn}").run()
        print("committed", session.conversation_id, flush=True)
    session.send("the last question").subscribe(
        on_next=lambda m: print("streaming", flush=True))
    import time
    time.sleep(60)
""")


def test_sigkill_mid_turn_loses_nothing_committed(server: FakeServer, tmp_path: Path) -> None:
    path = tmp_path / "killed.db"
    server.enqueue(*(Reply.text(f"answer {i}") for i in range(3)))
    stalled = Reply.events([chunk(role="assistant", content="part")], done=False)
    server.enqueue(stalled.then(STALL))
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED, str(path), server.base_url],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert child.stdout is not None
    lines = [child.stdout.readline() for _ in range(4)]
    child.send_signal(signal.SIGKILL)
    child.wait(10)
    child.stdout.close()
    assert lines[-1] == "streaming\n", lines
    cid = lines[0].split()[1]
    with sqlite3.connect(path) as check:
        assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    check.close()
    with SQLiteStore(path) as store:
        contents = [m.content for m in load_history(store, cid)]
    assert contents == [x for i in range(3) for x in (f"question {i}", f"answer {i}")]


def test_the_export_of_a_session_has_no_key_or_authorization(
    client: ChatClient, server: FakeServer, tmp_path: Path
) -> None:
    with SQLiteStore(tmp_path / "s.db") as store:
        session = ChatSession(client)
        writer = attach(session.history, store)
        server.enqueue(Reply.text("ok"))
        ask(session, "hello")
        exported: Any = store.export(writer.conversation_id)  # type: ignore[arg-type]
    assert server.requests[0].headers["Authorization"] == "Bearer sk-test-key"
    raw = (tmp_path / "s.db").read_bytes() + json.dumps(exported).encode()
    for wal in tmp_path.glob("s.db-*"):
        raw += wal.read_bytes()
    assert b"sk-test-key" not in raw and b"Bearer" not in raw


def test_a_session_with_a_store_writes_each_commit_and_resumes_by_id(
    client: ChatClient, server: FakeServer, tmp_path: Path
) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    session = ChatSession(client, system="Be brief.", store=store)
    assert session.conversation_id is None  # nothing committed yet
    server.enqueue(Reply.text("Hi Ada."), Reply.text("Owls."), Reply.text("Yes."))
    ask(session, "I am Ada")
    cid = session.conversation_id
    assert cid is not None and load_history(store, cid) == session.messages
    ask(session, "I like owls")
    assert load_history(store, cid) == session.messages

    again = ChatSession(client, store=store, conversation_id=cid)
    assert again.messages == session.messages and again.conversation_id == cid
    ask(again, "Do you remember?")
    assert server.requests[-1].messages[:5] == [m.to_request_dict() for m in session.messages]
    assert [m.content for m in load_history(store, cid)][-2:] == ["Do you remember?", "Yes."]

    renamed = ChatSession(client, system="Be kind.", store=store, conversation_id=cid)
    assert [m.content for m in renamed.messages[:2]] == ["Be kind.", "I am Ada"]
