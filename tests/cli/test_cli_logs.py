"""The command line's conversation log: logging, -c/--cid, ``rxchat logs``, and the input
features that came with it (blocks, piped stdin, --api-key, the model list), in-process."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rxchat import ChatSession
from rxchat.cli import ExitCode, main
from rxchat.stores import SQLiteStore
from rxchat.testing import FakeServer, Reply
from tests.cli.test_cli import KEY, Run


@pytest.fixture
def fake() -> Iterator[FakeServer]:
    with FakeServer() as server:
        yield server


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "data"


def run(data: Path, *argv: str, stdin: str = "", **env: str) -> Run:
    out, err = io.StringIO(), io.StringIO()
    environment = {"RXCHAT_API_KEY": KEY, "RXCHAT_DATA_DIR": str(data), **env}
    status = main(list(argv), stdout=out, stderr=err, stdin=io.StringIO(stdin),
                  env=environment)
    return Run(status, out.getvalue(), err.getvalue())


def stored(data: Path) -> SQLiteStore:
    return SQLiteStore(data / "conversations.db")


def test_a_chat_is_logged_and_continued_with_c_and_cid(fake: FakeServer, data: Path) -> None:
    fake.enqueue(Reply.text("Hi Ada."), Reply.text("Owls, noted."), Reply.text("You are Ada."))
    first = run(data, "chat", "--base-url", fake.base_url, stdin="My name is Ada\nI like owls\n")
    assert first.status == 0
    with stored(data) as store:
        (summary,) = store.list()
        assert (summary.title, summary.message_count, summary.model) == (
            "My name is Ada", 4, "rxchat-offline")
    assert f"[logged as {summary.id}; rxchat chat -c continues it]" in first.out
    again = run(data, "chat", "-c", "--base-url", fake.base_url, stdin="Who am I?\n")
    assert again.status == 0 and f"continuing conversation {summary.id}: 4 messages" in again.out
    assert [m["content"] for m in fake.requests[-1].messages] == [
        "My name is Ada", "Hi Ada.", "I like owls", "Owls, noted.", "Who am I?"]
    with stored(data) as store:
        assert [c.id for c in store.list()] == [summary.id]
        assert store.get(summary.id).messages[-1].content == "You are Ada."
    fake.enqueue(Reply.text("Still Ada."))
    assert run(data, "chat", "--cid", summary.id, "--base-url", fake.base_url,
               stdin="And now?\n").status == 0
    assert len(fake.requests[-1].messages) == 7


def test_logs_list_show_search_export_and_rm(fake: FakeServer, data: Path,
                                             tmp_path: Path) -> None:
    fake.enqueue(Reply.text("Owls hoot.", reasoning="birds"), Reply.text("Cats purr."))
    run(data, "ask", "--base-url", fake.base_url, "Tell me about owls")
    run(data, "ask", "--base-url", fake.base_url, "Tell me about cats")
    with stored(data) as store:
        cats, owls = (c.id for c in store.list())
    listing = run(data, "logs")
    assert listing.status == 0
    lines = listing.out.splitlines()
    assert lines[0].startswith(cats) and lines[0].endswith("Tell me about cats")
    assert lines[1].startswith(owls) and "2 msg" in lines[1]
    assert run(data, "logs", "list", "-n", "1").out.splitlines() == lines[:1]
    show = run(data, "logs", "show", owls)
    assert show.out.splitlines()[0] == "Tell me about owls"
    assert "you: Tell me about owls" in show.out
    assert "assistant: (thinking: birds) Owls hoot." in show.out
    assert run(data, "logs", "search", "hoot").out.startswith(owls)
    nothing = run(data, "logs", "search", "zebra")
    assert (nothing.status, nothing.out) == (0, "")
    assert "No logged conversation contains 'zebra'" in nothing.err
    exported = run(data, "logs", "export", owls)
    document = json.loads(exported.out)
    assert document["id"] == owls and document["messages"][1]["reasoning_content"] == "birds"
    path = tmp_path / "owls.json"
    path.write_text(exported.out)
    assert ChatSession.load(path).messages[1].content == "Owls hoot."
    assert run(data, "logs", "rm", owls).out == f"Deleted conversation {owls}.\n"
    missing = run(data, "logs", "show", owls)
    assert missing.status == ExitCode.USAGE and missing.out == ""
    assert missing.err == (f"rxchat: No logged conversation '{owls}'; list them with "
                           "`rxchat logs list`.\n")


def test_no_log_leaves_nothing_and_c_without_a_log_is_one_line(
    fake: FakeServer, data: Path
) -> None:
    assert run(data, "chat", "--no-log", "--base-url", fake.base_url, stdin="hi\n").status == 0
    assert run(data, "ask", "--no-log", "--base-url", fake.base_url, "hi").status == 0
    assert not (data / "conversations.db").exists() and not (data / "input_history").exists()
    empty = run(data, "chat", "-c", "--base-url", fake.base_url)
    assert empty.status == ExitCode.USAGE
    assert empty.err == ("rxchat: There is no logged conversation to continue yet; start one "
                         "without -c.\n")
    assert run(data, "logs").err == "No conversations logged yet.\n"


def test_an_empty_chat_logs_no_conversation(fake: FakeServer, data: Path) -> None:
    assert run(data, "chat", "--base-url", fake.base_url, stdin="/help\n").status == 0
    with stored(data) as store:
        assert store.list() == []


def test_reset_starts_a_new_logged_conversation_and_keeps_the_old(
    fake: FakeServer, data: Path
) -> None:
    run(data, "chat", "--base-url", fake.base_url, stdin="first topic\n/reset\nsecond topic\n")
    with stored(data) as store:
        assert [c.title for c in store.list()] == ["second topic", "first topic"]


def test_ask_c_continues_the_latest_conversation(fake: FakeServer, data: Path) -> None:
    fake.enqueue(Reply.text("Noted."), Reply.text("Ada."))
    run(data, "ask", "--system", "Be brief.", "--base-url", fake.base_url, "My name is Ada")
    result = run(data, "ask", "-c", "--system", "Ignored.", "--base-url", fake.base_url,
                 "Who am I?")
    assert (result.status, result.out) == (0, "Ada.\n")
    assert [m["content"] for m in fake.requests[1].messages] == [
        "Be brief.", "My name is Ada", "Noted.", "Who am I?"]
    with stored(data) as store:
        assert store.list()[0].message_count == 5


def test_a_triple_quote_block_is_one_message_with_its_indentation(
    fake: FakeServer, data: Path
) -> None:
    block = '"""\ndef f():\n    return 1\n\n"""\n'
    assert run(data, "chat", "--base-url", fake.base_url, stdin=block).status == 0
    assert fake.requests[0].messages[-1]["content"] == "def f():\n    return 1"
    assert len(fake.requests) == 1


def test_ask_appends_piped_stdin_to_the_prompt(fake: FakeServer, data: Path) -> None:
    run(data, "ask", "--base-url", fake.base_url, "Review", "this:", stdin="  x = 1\n  y = 2\n")
    assert fake.requests[0].messages[-1]["content"] == "Review this:\n\n  x = 1\n  y = 2"
    run(data, "ask", "--base-url", fake.base_url, "-", stdin="from stdin only\n")
    assert fake.requests[1].messages[-1]["content"] == "from stdin only"


def test_api_key_option_is_sent_and_never_printed(fake: FakeServer, data: Path) -> None:
    secret = "sk-from-the-option-9999"
    fake.enqueue(Reply.text("ok"), Reply.error(401, {"error": {"message": f"bad {secret}"}}))
    assert run(data, "ask", "--api-key", secret, "--base-url", fake.base_url, "hi").status == 0
    assert fake.requests[0].headers["Authorization"] == f"Bearer {secret}"
    failed = run(data, "ask", "--debug", "--api-key", secret, "--base-url", fake.base_url, "x")
    assert failed.status == ExitCode.AUTH and secret not in failed.err
    assert "bad ***" in failed.err
    raw = b"".join(p.read_bytes() for p in data.iterdir())
    assert secret.encode() not in raw and KEY.encode() not in raw


def test_an_api_key_alone_is_not_the_offline_model(data: Path, blocked_network: Any) -> None:
    result = run(data, "ask", "--api-key", "sk-x-12345678", "hi", RXCHAT_API_KEY="")
    assert result.status == ExitCode.CONNECTION and "offline" not in result.err


def test_plain_http_to_another_host_names_the_cli_flag(data: Path, blocked_network: Any) -> None:
    refused = run(data, "ask", "--base-url", "http://example.invalid/v1", "hi")
    assert refused.status == ExitCode.USAGE
    assert "--insecure-http" in refused.err and "allow_insecure_http" not in refused.err
    allowed = run(data, "ask", "--insecure-http", "--model", "m", "--base-url",
                  "http://example.invalid/v1", "hi")
    assert allowed.status == ExitCode.CONNECTION and blocked_network


def test_the_model_is_the_first_the_server_lists(fake: FakeServer, data: Path) -> None:
    fake.models = ["local-llama", "other"]
    run(data, "ask", "--base-url", fake.base_url, "hi")
    run(data, "ask", "--model", "chosen", "--base-url", fake.base_url, "hi")
    run(data, "ask", "--base-url", fake.base_url, "hi", RXCHAT_MODEL="from-env")
    assert [r.json["model"] for r in fake.requests] == ["local-llama", "chosen", "from-env"]
    fake.models = None
    missing = run(data, "ask", "--base-url", fake.base_url, "hi")
    assert missing.status == ExitCode.USAGE
    assert "No --model given" in missing.err and "--model or RXCHAT_MODEL" in missing.err
    fake.models = []
    assert "lists none" in run(data, "ask", "--base-url", fake.base_url, "hi").err


@pytest.mark.parametrize("argv", [("serve", "--model", "m"), ("--model", "m", "serve"),
                                  ("--system", "s", "serve"), ("--offline", "logs")])
def test_serve_and_logs_refuse_options_they_would_ignore(data: Path, argv: tuple[str]) -> None:
    result = run(data, *argv)
    assert result.status == ExitCode.USAGE
    assert "does not take --" in result.err or "unrecognized arguments: --" in result.err


@pytest.mark.parametrize(("spec", "says"), [
    ("nonexistent_module_xyz:f", "cannot import"),
    ("json", "write it as module:function"),
    ("json:nothing_here", "json has no function 'nothing_here'"),
    ("os:sep", "os has no function 'sep'"),
])
def test_tool_options_are_checked_before_the_chat(
    fake: FakeServer, data: Path, spec: str, says: str
) -> None:
    result = run(data, "chat", "--tool", spec, "--base-url", fake.base_url, stdin="hi\n")
    assert result.status == ExitCode.USAGE and says in result.err
    assert fake.requests == []


def test_logs_go_to_the_data_directory_only(fake: FakeServer, data: Path) -> None:
    run(data, "ask", "--base-url", fake.base_url, "hi")
    assert sorted(p.name for p in data.iterdir())[0] == "conversations.db"
    assert oct(os.stat(data).st_mode & 0o777) == "0o700"


def test_ids_are_taken_by_any_unique_prefix(fake: FakeServer, data: Path) -> None:
    run(data, "ask", "--base-url", fake.base_url, "Tell me about owls")
    with stored(data) as store:
        (owls,) = (c.id for c in store.list())
        ids = [owls]
        while not any(i[0] == ids[-1][0] for i in ids[:-1]):  # 17 at most
            ids.append(store.create(title="empty"))
    twins = sorted(i for i in ids if i[0] == ids[-1][0])
    unique = next(n for n in range(1, 33) if all(owls[:n] != i[:n] for i in ids if i != owls))
    show = run(data, "logs", "show", owls[:unique])
    assert show.status == 0 and owls in show.out and "Tell me about owls" in show.out
    exported = run(data, "logs", "export", owls[:unique])
    assert exported.status == 0 and json.loads(exported.out)["messages"]
    fake.enqueue(Reply.text("More owls."))
    more = run(data, "ask", "--cid", owls[:unique], "--base-url", fake.base_url, "And?")
    assert more.status == 0
    assert fake.requests[-1].messages[0]["content"] == "Tell me about owls"
    ambiguous = run(data, "logs", "show", twins[0][0])
    assert ambiguous.status == ExitCode.USAGE
    assert ambiguous.err.count("\n") == 1 and "ambiguous" in ambiguous.err
    assert all(t in ambiguous.err for t in twins)
    removed = run(data, "logs", "rm", owls[:unique])
    assert removed.out == f"Deleted conversation {owls}.\n"
    gone = run(data, "logs", "show", owls[:unique])
    assert gone.status == ExitCode.USAGE and "No logged conversation" in gone.err
