"""``rxchat chat`` end to end in a real pseudo-terminal, against a loopback server.

Each test spawns ``python -m rxchat chat`` with :mod:`pexpect`, so readline, the
terminal's Ctrl-C (SIGINT from the line discipline), colours and the spinner are the
real ones; the :class:`FakeServer` runs in the test process and records the requests.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pexpect  # type: ignore[import-untyped, unused-ignore]  # stubs: types-pexpect
import pytest

from rxchat.testing import STALL, FakeServer, Reply, chunk

PROMPT = "you> "
KEY = "sk-pty-secret-7777"
TIMEOUT = 20


@pytest.fixture
def fake() -> Iterator[FakeServer]:
    with FakeServer() as server:
        yield server


def terminal_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A minimal environment: no keys unless given, a colour terminal, no user config."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "TERM": "xterm-256color",
        "INPUTRC": "/dev/null",
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
    }
    env.update(extra)
    return env


def spawn(env: dict[str, str], *args: str) -> pexpect.spawn:
    """``python -m rxchat chat ARGS`` in a fresh 40x200 terminal."""
    child = pexpect.spawn(
        sys.executable, ["-m", "rxchat", "chat", *args], env=env, encoding="utf-8",
        timeout=TIMEOUT, dimensions=(40, 200),
    )
    child.expect_exact(PROMPT)
    return child


def finish(child: pexpect.spawn) -> int:
    """Wait for the child to end; its exit status."""
    child.expect(pexpect.EOF)
    child.close()
    return int(child.exitstatus)


def test_a_two_turn_chat_sends_the_first_turn_with_the_second(
    fake: FakeServer, tmp_path: Path
) -> None:
    fake.enqueue(Reply.text("Nice to meet you, Ada."), Reply.text("You are Ada."))
    child = spawn(terminal_env(tmp_path, RXCHAT_API_KEY=KEY), "--base-url", fake.base_url)
    child.sendline("My name is Ada")
    child.expect_exact("Nice to meet you, Ada.")
    child.expect_exact("first token")
    child.expect_exact(PROMPT)
    child.sendline("Who am I?")
    child.expect_exact("You are Ada.")
    child.expect_exact(PROMPT)
    child.sendline("/exit")
    assert finish(child) == 0
    assert fake.requests[1].json["messages"] == [
        {"role": "user", "content": "My name is Ada"},
        {"role": "assistant", "content": "Nice to meet you, Ada."},
        {"role": "user", "content": "Who am I?"},
    ]


def test_ctrl_c_during_a_stalled_reply_closes_the_stream_and_the_chat_goes_on(
    fake: FakeServer, tmp_path: Path
) -> None:
    stalled = Reply.events([chunk(role="assistant", content="partial ")], done=False)
    fake.enqueue(stalled.then(STALL), Reply.text("Second answer."))
    child = spawn(terminal_env(tmp_path, RXCHAT_API_KEY=KEY), "--base-url", fake.base_url)
    child.sendline("Tell me a long story")
    child.expect_exact("partial ")
    child.sendintr()
    assert fake.wait_for_disconnects(1, timeout=TIMEOUT), "Ctrl-C did not close the stream"
    child.expect_exact("cancelled")
    child.expect_exact(PROMPT)
    child.sendline("Go on")
    child.expect_exact("Second answer.")
    child.expect_exact(PROMPT)
    child.sendline("/exit")
    assert finish(child) == 0
    sent = fake.requests[1].json["messages"]
    assert sent[1] == {"role": "assistant", "content": "partial "}
    assert sent[2] == {"role": "user", "content": "Go on"}


def test_ctrl_d_and_ctrl_c_at_an_empty_prompt_exit_0(fake: FakeServer, tmp_path: Path) -> None:
    env = terminal_env(tmp_path, RXCHAT_API_KEY=KEY)
    child = spawn(env, "--base-url", fake.base_url)
    child.sendeof()
    assert finish(child) == 0
    child = spawn(env, "--base-url", fake.base_url)
    child.sendintr()
    assert finish(child) == 0
    assert fake.requests == []


def test_ctrl_c_with_a_half_typed_line_discards_it(fake: FakeServer, tmp_path: Path) -> None:
    child = spawn(terminal_env(tmp_path, RXCHAT_API_KEY=KEY), "--base-url", fake.base_url)
    child.send("never mind")
    child.expect_exact("never mind")
    child.sendintr()
    child.expect_exact(PROMPT)
    child.sendintr()
    assert finish(child) == 0
    assert fake.requests == []


def test_a_401_is_one_line_on_stderr_without_the_key(fake: FakeServer, tmp_path: Path) -> None:
    fake.enqueue(Reply.error(401, {"error": {"message": f"Invalid token {KEY}"}}))
    child = spawn(terminal_env(tmp_path, RXCHAT_API_KEY=KEY), "--base-url", fake.base_url)
    child.sendline("hi")
    child.expect(r"rxchat: The server at \S+ answered HTTP 401: ([^\r\n]*)\r\n")
    line = child.match.group(1)
    assert "Invalid token ***" in line and "API key" in line
    child.expect_exact(PROMPT)
    assert "Traceback" not in child.before
    child.sendline("/exit")
    assert finish(child) == 0
    assert KEY not in child.before


def test_the_offline_chat_works_with_no_key_in_the_environment(tmp_path: Path) -> None:
    child = pexpect.spawn(
        sys.executable, ["-m", "rxchat", "chat"], env=terminal_env(tmp_path),
        encoding="utf-8", timeout=TIMEOUT, dimensions=(40, 200),
    )
    child.expect(r"no API key set[^\r\n]*SILICONFLOW_API_KEY[^\r\n]*not a language model")
    child.expect_exact(PROMPT)
    child.sendline("My name is Ada.")
    child.expect_exact('You said: "My name is Ada."')
    child.expect_exact(PROMPT)
    child.sendline("What is my name?")
    child.expect_exact("I remember that your name is Ada.")
    child.expect(r"\d+ tokens \(\+\d+ prompt\), first token [\d.]+ s, [\d.]+ tokens/s")
    child.expect_exact(PROMPT)
    child.sendline("/exit")
    assert finish(child) == 0


def test_readline_history_recalls_the_previous_line(fake: FakeServer, tmp_path: Path) -> None:
    fake.enqueue(Reply.text("first"), Reply.text("second"))
    child = spawn(terminal_env(tmp_path, RXCHAT_API_KEY=KEY), "--base-url", fake.base_url)
    child.sendline("hello again")
    child.expect_exact(PROMPT)
    child.send("\x1b[A")  # the up arrow
    child.send("\r")
    child.expect_exact("second")
    child.expect_exact(PROMPT)
    child.sendline("/exit")
    assert finish(child) == 0
    assert fake.requests[1].messages[-1] == {"role": "user", "content": "hello again"}


def test_spinner_then_dimmed_reasoning_then_the_answer(
    fake: FakeServer, tmp_path: Path
) -> None:
    slow = Reply.text("The answer.", reasoning="Thinking hard.")
    fake.enqueue(replace(slow, parts=(0.5, *slow.parts)))
    child = spawn(terminal_env(tmp_path, RXCHAT_API_KEY=KEY), "--base-url", fake.base_url)
    child.sendline("Why?")
    child.expect_exact("waiting for the reply")
    child.expect_exact("\x1b[2mthinking: ")
    child.expect_exact("Thinking hard.")
    child.expect_exact("The answer.")
    child.expect_exact(PROMPT)
    child.sendline("/exit")
    assert finish(child) == 0


def test_no_color_gives_plain_labels(fake: FakeServer, tmp_path: Path) -> None:
    fake.enqueue(Reply.text("The answer.", reasoning="Thinking hard."))
    env = terminal_env(tmp_path, RXCHAT_API_KEY=KEY, NO_COLOR="1")
    child = spawn(env, "--base-url", fake.base_url)
    child.sendline("Why?")
    child.expect_exact("[reasoning] Thinking hard.")
    child.expect_exact("[answer] The answer.")
    child.expect_exact(PROMPT)
    assert "\x1b[2m" not in child.before
    child.sendline("/exit")
    assert finish(child) == 0


# --- the conversation log and real input, in the terminal --------------------------


def logged(tmp_path: Path) -> list[str]:
    """Titles of the conversations logged under the temporary HOME, newest first."""
    from rxchat.stores import SQLiteStore

    path = tmp_path / ".local" / "share" / "rxchat" / "conversations.db"
    with SQLiteStore(path) as store:
        return [c.title or "" for c in store.list()]


def test_a_pasted_block_is_one_message_with_its_indentation(
    fake: FakeServer, tmp_path: Path
) -> None:
    fake.enqueue(Reply.text("Looks fine."))
    child = spawn(terminal_env(tmp_path, RXCHAT_API_KEY=KEY), "--base-url", fake.base_url)
    child.send("\x1b[200~def f():\n    return 1\x1b[201~")
    child.send("\r")
    child.expect_exact("Looks fine.")
    child.expect_exact(PROMPT)
    child.sendline("/exit")
    assert finish(child) == 0
    assert len(fake.requests) == 1
    assert fake.requests[0].messages[-1]["content"] == "def f():\n    return 1"


def test_a_triple_quote_block_in_the_terminal(fake: FakeServer, tmp_path: Path) -> None:
    fake.enqueue(Reply.text("Two lines."))
    child = spawn(terminal_env(tmp_path, RXCHAT_API_KEY=KEY), "--base-url", fake.base_url)
    child.sendline('"""')
    child.expect_exact("...> ")
    child.sendline("  first")
    child.expect_exact("...> ")
    child.sendline("  second")
    child.sendline('"""')
    child.expect_exact("Two lines.")
    child.expect_exact(PROMPT)
    child.sendline("/exit")
    assert finish(child) == 0
    assert fake.requests[0].messages[-1]["content"] == "  first\n  second"


def test_continue_and_input_history_survive_the_process(
    fake: FakeServer, tmp_path: Path
) -> None:
    fake.enqueue(Reply.text("Hello Ada."), Reply.text("You are Ada."))
    env = terminal_env(tmp_path, RXCHAT_API_KEY=KEY)
    child = spawn(env, "--base-url", fake.base_url)
    child.sendline("My name is Ada")
    child.expect_exact("Hello Ada.")
    child.expect_exact(PROMPT)
    child.sendeof()
    child.expect(r"logged as ([0-9a-f]{32})")
    cid = child.match.group(1)
    assert finish(child) == 0
    assert logged(tmp_path) == ["My name is Ada"]
    history = tmp_path / ".local" / "share" / "rxchat" / "input_history"
    assert oct(history.stat().st_mode & 0o777) == "0o600"

    child = spawn(env, "-c", "--base-url", fake.base_url)
    assert f"continuing conversation {cid}: 2 messages" in child.before
    child.send("\x1b[A")  # the up arrow brings back the line typed in the last run
    child.send("\r")
    child.expect_exact("You are Ada.")
    child.expect_exact(PROMPT)
    child.sendline("/exit")
    assert finish(child) == 0
    assert [m["content"] for m in fake.requests[1].messages] == [
        "My name is Ada", "Hello Ada.", "My name is Ada"]


def test_logs_and_api_key_in_the_terminal(fake: FakeServer, tmp_path: Path) -> None:
    secret = "sk-pty-option-31337"
    fake.enqueue(Reply.text("Owls hoot."))
    env = terminal_env(tmp_path)  # no key in the environment: only --api-key
    child = spawn(env, "--api-key", secret, "--base-url", fake.base_url)
    child.sendline("Tell me about owls")
    child.expect_exact("Owls hoot.")
    child.expect_exact(PROMPT)
    child.sendline("/exit")
    assert finish(child) == 0
    assert fake.requests[0].headers["Authorization"] == f"Bearer {secret}"
    listing = pexpect.spawn(sys.executable, ["-m", "rxchat", "logs", "search", "owls"],
                            env=env, encoding="utf-8", timeout=TIMEOUT)
    listing.expect(r"[0-9a-f]{32}  \S+ \S+ +2 msg  Tell me about owls")
    assert finish(listing) == 0


def test_ask_appends_piped_stdin(fake: FakeServer, tmp_path: Path) -> None:
    fake.enqueue(Reply.text("Reviewed."))
    command = f"printf '  x = 1\\n' | {sys.executable} -m rxchat ask --base-url " \
              f"{fake.base_url} Review this"
    env = terminal_env(tmp_path, RXCHAT_API_KEY=KEY)
    child = pexpect.spawn("/bin/sh", ["-c", command], env=env, encoding="utf-8", timeout=TIMEOUT)
    child.expect_exact("Reviewed.")
    assert finish(child) == 0
    assert fake.requests[0].messages[-1]["content"] == "Review this\n\n  x = 1"
