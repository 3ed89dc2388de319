"""Terminal escapes from a model or a store never reach a real terminal raw.

``ask``, ``chat`` (and ``/history``) and ``logs show/list/search`` run in a real
pseudo-terminal (:mod:`pexpect`); the reply or the stored text carries OSC 52 (set the
clipboard), OSC 0 (retitle the window), OSC 8 (a link hiding its target) and ``ESC[2J``
(clear the screen). What the terminal receives holds none of them raw, shows them
escaped, and the stored text is unchanged.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pexpect  # type: ignore[import-untyped, unused-ignore]  # stubs: types-pexpect
import pytest

from rxchat import Message
from rxchat.stores import SQLiteStore
from rxchat.testing import FakeServer, Reply
from tests.cli.test_cli_pty import KEY, PROMPT, TIMEOUT, fake, finish, spawn, terminal_env

__all__ = ["fake"]  # the fixture, imported for these tests

HOSTILE = ("Sure.\x1b]52;c;cm0gLXJmIH4=\x07\x1b]0;pwned\x07\x1b[2J"
           "\x1b]8;;http://evil.example\x1b\\docs\x1b]8;;\x1b\\\x9b31m\r\nend\tok")
RAW = ("\x1b]", "\x1b[2J", "\x07", "\x9b", "\x1b\\")
SHOWN = "Sure.\\x1b]52;c;cm0gLXJmIH4=\\x07\\x1b]0;pwned\\x07\\x1b[2J"


def run_cli(env: dict[str, str], *args: str) -> str:
    """``python -m rxchat ARGS`` in a real terminal; everything the terminal got."""
    child = pexpect.spawn(sys.executable, ["-m", "rxchat", *args], env=env,
                          encoding="utf-8", timeout=TIMEOUT, dimensions=(40, 400))
    child.expect(pexpect.EOF)
    output = str(child.before)
    child.close()
    assert child.exitstatus == 0, output
    return output


def assert_safe(output: str) -> None:
    for raw in RAW:
        assert raw not in output, (raw, output)


def test_ask_shows_escapes_escaped(fake: FakeServer, tmp_path: Path) -> None:
    fake.enqueue(Reply.text(HOSTILE))
    env = terminal_env(tmp_path, RXCHAT_API_KEY=KEY, RXCHAT_DATA_DIR=str(tmp_path / "d"))
    output = run_cli(env, "ask", "--base-url", fake.base_url, "hi")
    assert_safe(output)
    assert SHOWN in output and "end\tok" in output
    with SQLiteStore(tmp_path / "d" / "conversations.db") as store:
        (summary,) = store.list()
        assert store.get(summary.id).messages[-1].content == HOSTILE  # stored unchanged


def test_chat_and_history_show_escapes_escaped(fake: FakeServer, tmp_path: Path) -> None:
    fake.enqueue(Reply.text(HOSTILE))
    child = spawn(terminal_env(tmp_path, RXCHAT_API_KEY=KEY, RXCHAT_DATA_DIR=str(tmp_path)),
                  "--base-url", fake.base_url)
    child.sendline("hi")
    child.expect_exact("end\tok")
    reply = str(child.before)
    child.expect_exact(PROMPT)
    reply += str(child.before)
    child.sendline("/history")
    child.expect_exact("end\tok")
    history = str(child.before)
    child.expect_exact(PROMPT)
    history += str(child.before)
    child.sendline("/exit")
    assert finish(child) == 0
    for output in (reply, history):
        assert_safe(output)
        assert SHOWN in output


@pytest.fixture
def stored(tmp_path: Path) -> str:
    with SQLiteStore(tmp_path / "conversations.db") as store:
        conversation = store.create(model="m\x1b[2J", title="owls \x1b]0;pwned\x07")
        store.save_messages(conversation, (
            Message(role="user", content="owls?"),
            Message(role="assistant", content=HOSTILE, reasoning_content="\x1b[2Jthink"),
        ))
    return conversation


@pytest.mark.parametrize("action", ["list", "show", "search"])
def test_logs_show_stored_escapes_escaped(stored: str, tmp_path: Path, action: str) -> None:
    env = terminal_env(tmp_path, RXCHAT_DATA_DIR=str(tmp_path))
    args = {"list": ["list"], "show": ["show", stored], "search": ["search", "owls"]}[action]
    output = run_cli(env, "logs", *args)
    assert_safe(output)
    assert "owls \\x1b]0;pwned\\x07" in output
    if action == "show":
        assert SHOWN in output and "\\x1b[2Jthink" in output
