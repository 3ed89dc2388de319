"""The suite never touches the developer's home: ``HOME`` and rxchat's data directory
point at an empty temporary directory for the whole session (tests/conftest.py), and
the session ends by proving no rxchat file appeared in the real home."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rxchat.stores import DATA_DIR_VARIABLE, SQLiteStore, data_dir, default_database
from tests.conftest import REAL_DATA_DIR, REAL_HOME, _touches_real_home, rxchat_files_in


def test_home_and_the_data_directory_are_private_for_the_whole_session(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    home = Path(os.environ["HOME"])
    assert home != REAL_HOME and not home.is_relative_to(REAL_HOME)
    assert Path(os.path.expanduser("~")) == home
    assert not data_dir().is_relative_to(REAL_DATA_DIR)
    monkeypatch.delenv(DATA_DIR_VARIABLE)  # even the platform's default is private
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    assert data_dir().is_relative_to(home)


def test_a_child_process_without_rxchat_data_dir_stays_private_too() -> None:
    """The docs test drops every RXCHAT_ variable from its scripts' environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RXCHAT_")}
    code = ("from rxchat.stores import SQLiteStore, default_database\n"
            "SQLiteStore().close()\nprint(default_database())")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=60, check=True)
    written = Path(done.stdout.strip())
    assert written.exists() and not written.is_relative_to(REAL_HOME)


def test_writes_under_the_real_data_directory_are_caught() -> None:
    inside = str(REAL_DATA_DIR / "conversations.db")
    assert _touches_real_home("open", (inside, "wb", 0)) == inside
    assert _touches_real_home("open", (inside, None, os.O_RDWR | os.O_CREAT)) == inside
    assert _touches_real_home("sqlite3.connect", (inside,)) == inside
    assert _touches_real_home("open", (inside, "r", 0)) is None  # reading is harmless
    assert _touches_real_home("open", (str(default_database()), "w", 0)) is None


def test_the_real_home_listing_sees_rxchat_files(tmp_path: Path) -> None:
    home, data = tmp_path / "home", tmp_path / "home" / ".local" / "share" / "rxchat"
    assert rxchat_files_in(home, data) == set()
    with SQLiteStore(data / "conversations.db") as store:
        store.create()
    (home / ".rxchat_history").write_text("")
    found = rxchat_files_in(home, data)
    assert str(data / "conversations.db") in found and str(home / ".rxchat_history") in found
    assert not any(name.endswith(("-wal", "-shm")) for name in found)
