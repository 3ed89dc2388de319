"""Two writers on one conversation, and many sessions sharing one store.

A save is a compare-and-set against the history its writer resumed or last saved:
every committed turn is either stored or reported (``StoreConflict``), never lost
silently. Writes from many threads are group-committed: the tests count
transactions per batch of commits, not time.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import reactivex

from rxchat import ChatSession, Message
from rxchat.errors import ConversationNotFoundError, StoreConflict, StoreError
from rxchat.stores import ConversationStore, SQLiteStore, attach

ROOT = Path(__file__).resolve().parents[2]
SESSIONS = 16
TURNS = 3


def echo(params: dict[str, Any], **_: Any) -> reactivex.Observable[Message]:
    """A completion that answers at once: 're: <the last user message>'."""
    asked = params["messages"][-1]
    text = asked.content if isinstance(asked, Message) else asked["content"]
    return reactivex.of(Message(role="assistant", content=f"re: {text}", finish_reason="stop"))


def session_on(store: ConversationStore, cid: str) -> ChatSession:
    return ChatSession(store=store, conversation_id=cid, complete=echo)


def base_conversation(store: ConversationStore) -> tuple[str, tuple[Message, ...]]:
    cid = store.create(model="m")
    base = (Message(role="system", content="Be brief."),
            Message(role="user", content="start"), Message(content="started"))
    store.save_messages(cid, base)
    return cid, base


def test_two_writers_lose_nothing_silently(store: ConversationStore) -> None:
    """0.2: A1, B1, A2 left A1, A2 stored and nothing reported."""
    cid, base = base_conversation(store)
    a, b = session_on(store, cid), session_on(store, cid)
    try:
        a.send("A1").run()
        assert a.store_error is None
        b.send("B1").run()
        assert isinstance(b.store_error, StoreConflict)
        assert b.store_error.conversation_id == cid
        a.send("A2").run()
        assert a.store_error is None
        assert store.get(cid).messages == a.messages
        assert [m.content for m in store.get(cid).messages[len(base):]] == [
            "A1", "re: A1", "A2", "re: A2"]
        b.send("B2").run()  # every later commit of b is reported too
        assert isinstance(b.store_error, StoreConflict)
        assert b.messages[-2].content == "B2"  # b keeps its history
    finally:
        a.dispose()
        b.dispose()


def test_a_writer_attached_again_goes_on_from_what_is_stored(
    store: ConversationStore,
) -> None:
    cid, base = base_conversation(store)
    first = session_on(store, cid)
    second = session_on(store, cid)
    try:
        first.send("one").run()
        second.send("two").run()
        assert isinstance(second.store_error, StoreConflict)
        fork = attach(second.history, store)  # "continue as a new conversation"
        second.send("three").run()
        assert fork.conversation_id is not None and fork.error is None
        assert store.get(fork.conversation_id).messages == second.messages
        assert [m.content for m in second.messages[len(base):]] == [
            "two", "re: two", "three", "re: three"]
        assert store.get(cid).messages == first.messages
        fork.dispose()
    finally:
        first.dispose()
        second.dispose()


def test_a_save_tried_again_recognises_its_own_write(store: ConversationStore) -> None:
    cid, base = base_conversation(store)
    turn = (*base, Message(role="user", content="q"), Message(content="a"))
    store.save_messages(cid, turn, expected=base)
    store.save_messages(cid, turn, expected=base)  # the retry: no false conflict
    assert store.get(cid).messages == turn
    with pytest.raises(StoreConflict) as raised:
        store.save_messages(cid, (*base, Message(role="user", content="other")), expected=base)
    assert isinstance(raised.value, StoreError)
    assert "nothing was overwritten" in str(raised.value)
    assert store.get(cid).messages == turn
    with pytest.raises(ConversationNotFoundError):
        store.save_messages("nope", turn, expected=base)


def check_outcome(
    store: ConversationStore, cid: str, base: tuple[Message, ...],
    reports: list[dict[str, Any]],
) -> None:
    """Every committed turn is stored or was reported; the stored ones in commit order."""
    stored = store.get(cid).messages
    assert stored[: len(base)] == base
    tail = [m.content for m in stored[len(base):]]
    assert all(tail[i] == f"re: {tail[i - 1]}" for i in range(1, len(tail), 2))
    stored_asks = tail[::2]
    saved = [ask for report in reports for ask, error in report["turns"] if error is None]
    conflicted = [ask for report in reports for ask, error in report["turns"]
                  if error == "StoreConflict"]
    assert sorted(saved) == sorted(stored_asks)
    assert len(saved) + len(conflicted) == SESSIONS * TURNS  # none lost silently
    assert all(error in (None, "StoreConflict")
               for report in reports for _, error in report["turns"])
    for report in reports:  # each writer's stored turns in the order it committed them
        mine = [ask for ask in stored_asks if ask.startswith(f"s{report['n']}-")]
        assert mine == sorted(mine, key=lambda ask: int(ask.rsplit("-", 1)[1]))


def run_session(store: ConversationStore, cid: str, n: int,
                start: threading.Event | None = None) -> dict[str, Any]:
    session = session_on(store, cid)
    try:
        if start is not None:
            assert start.wait(30)
        turns = []
        for t in range(TURNS):
            ask = f"s{n}-{t}"
            session.send(ask).run()
            error = session.store_error
            turns.append((ask, None if error is None else type(error).__name__))
        return {"n": n, "turns": turns}
    finally:
        session.dispose()


def test_sixteen_threads_resuming_one_id(store: ConversationStore) -> None:
    cid, base = base_conversation(store)
    start = threading.Event()
    reports: list[dict[str, Any]] = []

    def work(n: int) -> None:
        reports.append(run_session(store, cid, n, start))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(SESSIONS)]
    for thread in threads:
        thread.start()
    start.set()
    for thread in threads:
        thread.join(60)
        assert not thread.is_alive()
    assert len(reports) == SESSIONS
    check_outcome(store, cid, base, reports)


WORKER = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, sys.argv[1])
    from rxchat.stores import PostgresStore, SQLiteStore
    from tests.stores.test_stores_writers import run_session

    kind, where, cid, n = sys.argv[2:6]
    store = SQLiteStore(where) if kind == "sqlite" else PostgresStore(where)
    print("ready", flush=True)
    assert sys.stdin.readline() == "go\\n"
    print(json.dumps(run_session(store, cid, int(n))), flush=True)
    store.close()
""")


def test_sixteen_processes_resuming_one_id(
    kind: str, store: ConversationStore, request: pytest.FixtureRequest, tmp_path: Path,
) -> None:
    cid, base = base_conversation(store)
    where = str(tmp_path / "store.db") if kind == "sqlite" else request.getfixturevalue(
        "postgres_dsn")
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(ROOT), kind, where, cid, str(n)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        for n in range(SESSIONS)
    ]
    try:
        for worker in workers:  # all resumed before any writes
            assert worker.stdout is not None and worker.stdout.readline() == "ready\n"
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        reports = [json.loads(worker.communicate(timeout=100)[0]) for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    assert all(worker.returncode == 0 for worker in workers)
    check_outcome(store, cid, base, reports)


# -- group commit ------------------------------------------------------------------------


@contextmanager
def write_lock_held(kind: str, store: ConversationStore) -> Iterator[None]:
    """Another connection holds the database's write lock until the block ends."""
    if kind == "sqlite":
        assert isinstance(store, SQLiteStore)
        other = sqlite3.connect(store.path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            other.execute("ROLLBACK")
            other.close()
        return
    import psycopg

    with psycopg.connect(store._dsn, autocommit=True) as other:  # type: ignore[attr-defined]
        other.execute("BEGIN")
        other.execute("LOCK TABLE rxchat_conversations IN EXCLUSIVE MODE")
        try:
            yield
        finally:
            other.execute("ROLLBACK")


def wait_for(store: Any, predicate: Callable[[], bool]) -> None:
    with store._writes:
        assert store._writes.wait_for(predicate, 30)


def test_commits_from_many_threads_share_transactions(
    kind: str, store: ConversationStore,
) -> None:
    """While one commit waits for the disk, the writes that arrive are committed
    together in the next transaction: 16 saves, 2 transactions."""
    ids = [store.create() for _ in range(SESSIONS)]
    histories = {cid: (Message(role="user", content=cid), Message(content="a"))
                 for cid in ids}
    errors: list[BaseException] = []

    def save(cid: str) -> None:
        try:
            store.save_messages(cid, histories[cid], expected=())
        except BaseException as exc:
            errors.append(exc)

    before = store.write_transactions  # type: ignore[attr-defined]
    with write_lock_held(kind, store):
        first = threading.Thread(target=save, args=(ids[0],))
        first.start()
        wait_for(store, lambda: store._leading and not store._queue)  # type: ignore[attr-defined]
        rest = [threading.Thread(target=save, args=(cid,)) for cid in ids[1:]]
        for thread in rest:
            thread.start()
        wait_for(store, lambda: len(store._queue) == SESSIONS - 1)  # type: ignore[attr-defined]
    for thread in (first, *rest):
        thread.join(30)
        assert not thread.is_alive()
    assert errors == []
    assert store.write_transactions - before == 2  # type: ignore[attr-defined]
    assert all(store.get(cid).messages == histories[cid] for cid in ids)


def test_one_failing_write_in_a_batch_leaves_the_others(
    kind: str, store: ConversationStore,
) -> None:
    cid, base = base_conversation(store)
    good = store.create()
    outcomes: dict[str, BaseException | None] = {}

    def save(name: str, target: str, messages: tuple[Message, ...],
             expected: tuple[Message, ...]) -> None:
        try:
            store.save_messages(target, messages, expected=expected)
            outcomes[name] = None
        except BaseException as exc:
            outcomes[name] = exc

    blocker = threading.Thread(target=save, args=(
        "blocker", good, (Message(role="user", content="first"),), ()))
    jobs = [
        ("conflict", cid, (Message(role="user", content="x"),), ()),
        ("missing", "nope", (), ()),
        ("ok", cid, (*base, Message(role="user", content="y")), base),
    ]
    with write_lock_held(kind, store):
        blocker.start()
        wait_for(store, lambda: store._leading and not store._queue)  # type: ignore[attr-defined]
        threads = [threading.Thread(target=save, args=job) for job in jobs]
        for thread in threads:
            thread.start()
        wait_for(store, lambda: len(store._queue) == len(jobs))  # type: ignore[attr-defined]
    for thread in (blocker, *threads):
        thread.join(30)
    assert outcomes["blocker"] is None and outcomes["ok"] is None
    assert isinstance(outcomes["conflict"], StoreConflict)
    assert isinstance(outcomes["missing"], ConversationNotFoundError)
    assert store.get(cid).messages[-1].content == "y"


def test_a_store_without_compare_and_set_is_still_written(store: ConversationStore) -> None:
    """A store of your own written for an earlier rxchat (no ``expected``) still works."""

    class Older:
        def __init__(self, inner: ConversationStore) -> None:
            self.inner = inner

        def create(self, *, model: str | None = None, title: str | None = None) -> str:
            return self.inner.create(model=model, title=title)

        def save_messages(self, conversation_id: str, messages: Any, *,
                          model: str | None = None) -> None:
            self.inner.save_messages(conversation_id, messages, model=model)

    session = ChatSession(store=Older(store), complete=echo)  # type: ignore[arg-type]
    try:
        session.send("hi").run()
        assert session.store_error is None and session.conversation_id is not None
        assert store.get(session.conversation_id).messages == session.messages
    finally:
        session.dispose()
