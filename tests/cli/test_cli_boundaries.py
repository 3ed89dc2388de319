"""The command line at its boundaries, in-process: exact text when piped, export stays
exact JSON, provider input that 0.2 crashed on, and the smaller CLI items (``--cid ''``,
unknown ids, a data directory that cannot be written)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from rxchat import Message
from rxchat.cli import ExitCode
from rxchat.stores import SQLiteStore
from rxchat.testing import FakeServer, Reply, chunk
from tests.cli.test_cli_logs import data, fake, run

__all__ = ["data", "fake"]  # fixtures, imported for these tests

HOSTILE = "Sure.\x1b]52;c;cm0gLXJmIH4=\x07\x1b[2J\r\nend\tok"


def test_piped_output_and_export_keep_the_text_exact(fake: FakeServer, data: Path) -> None:
    fake.enqueue(Reply.text(HOSTILE))
    asked = run(data, "ask", "--base-url", fake.base_url, "hi")
    assert (asked.status, asked.out) == (0, HOSTILE + "\n")
    with SQLiteStore(data / "conversations.db") as store:
        (summary,) = store.list()
    shown = run(data, "logs", "show", summary.id)
    assert HOSTILE.strip() in shown.out  # not a terminal: unchanged
    exported = json.loads(run(data, "logs", "export", summary.id).out)
    assert exported["messages"][-1]["content"] == HOSTILE


def test_ask_with_a_split_surrogate_pair_and_a_lone_one_prints_and_logs(
    fake: FakeServer, data: Path
) -> None:
    fake.enqueue(Reply.raw(
        b'data: {"choices":[{"index":0,"delta":{"content":"a\\ud83d"}}]}\n\n'
        b'data: {"choices":[{"index":0,"delta":{"content":"\\ude00 \\udc80"}}]}\n\n'
        b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
        b"data: [DONE]\n\n"
    ))
    asked = run(data, "ask", "--base-url", fake.base_url, "hi")
    assert (asked.status, asked.out) == (0, "a\U0001f600 \ufffd\n")
    with SQLiteStore(data / "conversations.db") as store:
        (summary,) = store.list()
        assert store.get(summary.id).messages[-1].content == "a\U0001f600 \ufffd"


def test_chat_survives_content_parts_and_reports_other_content(
    fake: FakeServer, data: Path
) -> None:
    parts = [{"type": "thinking", "thinking": "hm"}, {"type": "text", "text": "Paris."}]
    fake.enqueue(
        Reply.events([{"choices": [{"index": 0, "delta": {"content": parts}}]},
                      chunk(finish_reason="stop")]),
        Reply.events([{"choices": [{"index": 0, "delta": {"content": {"odd": 1}}}]}]),
        Reply.text("still here"),
    )
    chatted = run(data, "chat", "--base-url", fake.base_url, stdin="one\ntwo\nthree\n")
    assert chatted.status == 0, chatted.err
    assert "Paris." in chatted.out and "still here" in chatted.out
    assert "dict {'odd': 1}" in chatted.err and "Traceback" not in chatted.err


@pytest.mark.parametrize("cid", ["", "  "])
def test_an_empty_cid_is_refused(fake: FakeServer, data: Path, cid: str) -> None:
    result = run(data, "chat", "--cid", cid, "--base-url", fake.base_url, stdin="hi\n")
    assert result.status == ExitCode.USAGE
    assert "empty conversation id" in result.err and fake.requests == []


def test_an_unknown_id_advises_the_command_not_python(data: Path) -> None:
    result = run(data, "chat", "--cid", "nope")
    assert result.err == ("rxchat: No logged conversation 'nope'; list them with "
                          "`rxchat logs list`.\n")
    assert "ConversationStore" not in result.err


def _unwritable(tmp_path: Path) -> Path:
    """A data directory rxchat cannot create its database in."""
    if os.geteuid() == 0:  # root writes anywhere: a file where the directory belongs
        blocked = tmp_path / "data"
        blocked.write_text("")
        return blocked
    locked = tmp_path / "data"
    locked.mkdir()
    locked.chmod(0o500)
    return locked


def test_ask_with_an_unwritable_data_dir_hints_no_log(fake: FakeServer, tmp_path: Path) -> None:
    where = _unwritable(tmp_path)
    fake.enqueue(Reply.text("answer"))
    refused = run(where, "ask", "--base-url", fake.base_url, "hi")
    assert refused.status != 0 and "add --no-log" in refused.err
    fake.enqueue(Reply.text("answer"))
    answered = run(where, "ask", "--no-log", "--base-url", fake.base_url, "hi")
    assert (answered.status, answered.out) == (0, "answer\n")


def test_describe_message_escapes_only_the_message_text() -> None:
    from rxchat.cli._logs import describe_message
    from rxchat.cli._render import Palette
    from rxchat.cli._safe import escape_controls

    line = describe_message(Message(content="a\x1b[2Jb"), Palette(True), escape_controls)
    assert "a\\x1b[2Jb" in line and "\x1b[1m" in line  # the palette's own style stays
