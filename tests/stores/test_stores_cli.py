"""The store seen from the command line: a conflict explained, a read-only log read,
an empty ``--cid`` refused."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from rxchat import Message
from rxchat.stores import SQLiteStore
from rxchat.testing import FakeServer, RecordedRequest, Reply
from tests.cli.test_cli_logs import run


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def fake() -> Iterator[FakeServer]:
    with FakeServer() as server:
        yield server


def logged_conversation(data: Path) -> str:
    with SQLiteStore(data / "conversations.db") as store:
        cid = store.create()
        store.save_messages(cid, (Message(role="user", content="first"),
                                  Message(content="one")))
        return cid


def another_window_writes(data: Path, cid: str) -> None:
    with SQLiteStore(data / "conversations.db") as store:
        messages = store.get(cid).messages
        store.save_messages(cid, (*messages, Message(role="user", content="theirs"),
                                  Message(content="kept")), expected=messages)


def test_chat_explains_a_conflict_and_fork_keeps_both(data: Path) -> None:
    cid = logged_conversation(data)

    def reply(_request: RecordedRequest) -> Reply:
        if not reply.done:  # type: ignore[attr-defined]
            reply.done = True  # type: ignore[attr-defined]
            another_window_writes(data, cid)  # while this chat's first reply streams
        return Reply.text("ok")

    reply.done = False  # type: ignore[attr-defined]
    with FakeServer(reply) as server:
        result = run(data, "chat", "--cid", cid, "--base-url", server.base_url,
                     stdin="mine\nagain\n/fork\nlast\n")
    assert result.status == 0, result.err
    assert "changed by another writer" in result.err
    assert f"changed conversation {cid} since this chat loaded it" in result.out
    assert "/fork logs it as a new conversation" in result.out
    assert "this turn was not logged" in result.out
    with SQLiteStore(data / "conversations.db") as store:
        theirs = store.get(cid).messages
        assert [m.content for m in theirs] == ["first", "one", "theirs", "kept"]
        (fork,) = [c for c in store.list() if c.id != cid]
        assert [m.content for m in store.get(fork.id).messages] == [
            "first", "one", "mine", "ok", "again", "ok", "last", "ok"]


def test_ask_logs_a_new_conversation_instead_of_overwriting(data: Path) -> None:
    cid = logged_conversation(data)

    def reply(_request: RecordedRequest) -> Reply:
        another_window_writes(data, cid)
        return Reply.text("answer")

    with FakeServer(reply) as server:
        result = run(data, "ask", "--cid", cid, "--base-url", server.base_url, "question")
    assert result.status == 0, result.err
    assert "nothing was overwritten" in result.err and "--cid " in result.err
    with SQLiteStore(data / "conversations.db") as store:
        assert [m.content for m in store.get(cid).messages][-1] == "kept"
        (fork,) = [c for c in store.list() if c.id != cid]
        assert [m.content for m in store.get(fork.id).messages] == [
            "first", "one", "question", "answer"]
    assert result.err.split("--cid ")[1].split()[0] == fork.id


def test_an_empty_cid_is_refused(data: Path, fake: FakeServer) -> None:
    for command in (["chat"], ["ask", "hi"]):
        result = run(data, *command, "--cid", "", "--base-url", fake.base_url)
        assert result.status != 0
        assert "--cid" in result.err and "empty conversation id" in result.err
        assert "rxchat logs list" in result.err
    assert fake.requests == []


def test_an_unknown_id_points_to_logs_list(data: Path) -> None:
    logged_conversation(data)
    result = run(data, "logs", "show", "nope")
    assert result.status != 0 and "`rxchat logs list`" in result.err
    assert "ConversationStore.list()" not in result.err


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory another user may enter (pytest's own temporary ones are private)."""
    directory = Path(tempfile.mkdtemp(prefix="rxchat-read-only-"))
    os.chmod(directory, 0o755)
    try:
        yield directory
    finally:
        for path in directory.rglob("*"):
            if path.is_dir():
                os.chmod(path, 0o700)
        shutil.rmtree(directory, ignore_errors=True)


def test_logs_list_works_in_a_read_only_data_directory(shared_dir: Path) -> None:
    """0.2: every `rxchat logs` action opened the file for writing and failed."""
    data = shared_dir / "data"
    cid = logged_conversation(data)
    prefix: list[str] = []
    if os.geteuid() == 0:  # root writes anywhere: read it as another user
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv to drop privileges")
        prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        probe = subprocess.run([*prefix, sys.executable, "-c", "import rxchat"],
                               capture_output=True, timeout=60, check=False, cwd=shared_dir)
        if probe.returncode != 0:
            pytest.skip("another user cannot run this Python (a private virtualenv)")
        os.chmod(data, 0o755)
        os.chmod(data / "conversations.db", 0o644)
    else:
        os.chmod(data / "conversations.db", 0o444)
        os.chmod(data, 0o555)
    env = {**os.environ, "RXCHAT_DATA_DIR": str(data), "HOME": "/nonexistent"}

    def logs(*action: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*prefix, sys.executable, "-m", "rxchat", "logs", *action],
                              env=env, capture_output=True, text=True, timeout=60,
                              check=False, cwd=shared_dir)

    for action in (["list"], ["show", cid], ["search", "first"], ["export", cid]):
        done = logs(*action)
        assert done.returncode == 0, done.stderr
        assert cid in done.stdout or "first" in done.stdout
    removed = logs("rm", cid)
    assert removed.returncode != 0 and "Traceback" not in removed.stderr
    assert "unexpected" not in removed.stderr, removed.stderr
