"""What only the SQLite store promises: a private file, WAL, several processes at once."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rxchat.errors import StoreError
from rxchat.stores import SQLiteStore, data_dir, default_database

WORKER = textwrap.dedent("""
    import sys
    from rxchat import Message
    from rxchat.stores import SQLiteStore

    store = SQLiteStore(sys.argv[1])
    cid = store.create(model=sys.argv[2])
    history = ()
    for turn in range(20):
        history += (Message(role="user", content=f"{sys.argv[2]} question {turn}"),
                    Message(content=f"{sys.argv[2]} answer {turn}"))
        store.save_messages(cid, history)
    print(cid)
""")


def test_the_default_file_is_private_in_the_data_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RXCHAT_DATA_DIR", str(tmp_path / "deep" / "rxchat"))
    with SQLiteStore() as store:
        store.save_messages(store.create(), ())
    path = tmp_path / "deep" / "rxchat" / "conversations.db"
    assert store.path == path == default_database()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.parent.parent.stat().st_mode) == 0o700
    for sidecar in path.parent.glob("conversations.db-*"):
        assert stat.S_IMODE(sidecar.stat().st_mode) == 0o600, sidecar


def test_without_rxchat_data_dir_the_platform_user_data_dir_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RXCHAT_DATA_DIR")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert data_dir() == tmp_path / "xdg" / "rxchat"
    assert data_dir({"RXCHAT_DATA_DIR": "/elsewhere"}) == Path("/elsewhere")


def test_an_existing_file_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    path.touch(mode=0o640)
    os.chmod(path, 0o640)
    SQLiteStore(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_the_file_is_in_wal_mode_and_passes_the_integrity_check(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "s.db") as store:
        store.save_messages(store.create(), ())
    with sqlite3.connect(tmp_path / "s.db") as check:
        assert check.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert check.execute("PRAGMA user_version").fetchone() == (2,)
    check.close()


def test_two_processes_writing_20_turns_each_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    SQLiteStore(path).close()
    workers = [
        subprocess.Popen([sys.executable, "-c", WORKER, str(path), name],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name in ("alpha", "beta")
    ]
    ids = []
    for worker in workers:
        out, err = worker.communicate(timeout=60)
        assert worker.returncode == 0, err
        ids.append(out.strip())
    with SQLiteStore(path) as store:
        for cid, name in zip(ids, ("alpha", "beta"), strict=True):
            messages = store.get(cid).messages
            assert len(messages) == 40
            assert messages[-1].content == f"{name} answer 19"
        assert len(store.search("question")) == 2


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("not a database, just some notes " * 100)
    with pytest.raises(StoreError, match=r"notes\.txt.*not an rxchat store"):
        SQLiteStore(path)


def test_a_path_that_cannot_be_created_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match=r"could not be opened.*permissions"):
        SQLiteStore(blocker / "sub" / "s.db")
