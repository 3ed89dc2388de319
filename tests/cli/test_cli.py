"""The command line in-process: ``main(argv, stdout=..., stderr=..., stdin=..., env=...)``.

Every test talks to a real loopback :class:`FakeServer` (or the in-process offline
model) and asserts what went over the wire as well as what was printed. The real
terminal (readline, Ctrl-C, the spinner) is covered in ``test_cli_pty.py``.
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest

from rxchat import Message, Usage
from rxchat.cli import ExitCode, exit_code_for, main
from rxchat.cli._render import Palette, ReplyView, format_stats, palette_for
from rxchat.errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    RateLimitError,
    ServerError,
    SessionError,
    StreamError,
    StreamInterrupted,
)
from rxchat.testing import STALL, FakeServer, Reply, chunk, closed_port

KEY = "sk-test-secret-4242"
PYTHON = sys.executable


@dataclass
class Run:
    """What one ``main()`` call returned and printed."""

    status: int
    out: str
    err: str


def run(
    *argv: str, stdin: str = "", env: Mapping[str, str] | None = None
) -> Run:
    """Call ``main`` in-process with captured streams."""
    out, err = io.StringIO(), io.StringIO()
    status = main(
        list(argv), stdout=out, stderr=err, stdin=io.StringIO(stdin),
        env={"RXCHAT_API_KEY": KEY} if env is None else env,
    )
    return Run(status, out.getvalue(), err.getvalue())


@pytest.fixture
def fake() -> Iterator[FakeServer]:
    with FakeServer() as server:
        yield server


# --- options -------------------------------------------------------------------------


def test_version_prints_the_package_version() -> None:
    result = run("--version")
    assert (result.status, result.out) == (0, "rxchat 0.1.0\n")


def test_help_names_the_commands_and_the_exit_statuses() -> None:
    result = run("--help")
    assert result.status == 0
    for word in ("chat", "ask", "serve", "--offline", "--no-color", "3 authentication"):
        assert word in result.out


def test_a_usage_error_is_one_line_and_status_2() -> None:
    result = run("ask", "--temperature", "warm", "hi")
    assert result.status == 2
    assert result.err.count("\n") == 1
    assert "--temperature" in result.err


def test_common_options_work_before_and_after_the_command(fake: FakeServer) -> None:
    fake.enqueue(Reply.text("one"), Reply.text("two"))
    before = run("--model", "m-1", "--base-url", fake.base_url, "ask", "hi")
    after = run("ask", "hi", "--model", "m-2", "--base-url", fake.base_url)
    assert (before.status, after.status) == (0, 0)
    assert [r.json["model"] for r in fake.requests] == ["m-1", "m-2"]


def test_python_dash_m_rxchat_runs_the_same_command() -> None:
    done = subprocess.run(
        [PYTHON, "-m", "rxchat", "--version"], capture_output=True, text=True, timeout=30,
        check=False,
    )
    assert (done.returncode, done.stdout) == (0, "rxchat 0.1.0\n")


# --- ask -----------------------------------------------------------------------------


def test_ask_streams_the_answer_to_stdout(fake: FakeServer) -> None:
    fake.enqueue(Reply.text("Hello there, friend.", usage={"prompt_tokens": 3,
                                                            "completion_tokens": 4}))
    result = run("ask", "--base-url", fake.base_url, "Say", "hello")
    assert result.status == 0
    assert result.out == "Hello there, friend.\n"
    body = fake.requests[0].json
    assert body["messages"] == [{"role": "user", "content": "Say hello"}]
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert fake.requests[0].headers["Authorization"] == f"Bearer {KEY}"


def test_ask_sends_system_model_and_temperature(fake: FakeServer) -> None:
    run("ask", "--base-url", fake.base_url, "--system", "Be terse.", "--model", "m-x",
        "--temperature", "0.2", "hi")
    body = fake.requests[0].json
    assert body["messages"][0] == {"role": "system", "content": "Be terse."}
    assert (body["model"], body["temperature"]) == ("m-x", 0.2)


def test_ask_dash_reads_the_prompt_from_stdin(fake: FakeServer) -> None:
    fake.enqueue(Reply.text("ok"))
    result = run("ask", "--base-url", fake.base_url, "-", stdin="line one\nline two\n")
    assert (result.status, result.out) == (0, "ok\n")
    assert fake.requests[0].messages[-1]["content"] == "line one\nline two"


def test_ask_with_an_empty_prompt_is_a_usage_error(fake: FakeServer) -> None:
    result = run("ask", "--base-url", fake.base_url, "-", stdin="  \n")
    assert result.status == ExitCode.USAGE
    assert "prompt is empty" in result.err
    assert fake.requests == []


def test_ask_keeps_reasoning_out_of_stdout_and_labels_it(fake: FakeServer) -> None:
    fake.enqueue(Reply.text("42", reasoning="Let me think."))
    result = run("ask", "--base-url", fake.base_url, "why?")
    assert result.out == "42\n"
    assert "[reasoning] Let me think." in result.err


def test_ask_without_a_key_uses_the_offline_model_and_says_so_in_one_line() -> None:
    result = run("ask", "my", "name", "is", "Ada", env={})
    assert result.status == 0
    assert result.out.startswith('You said: "my name is Ada".')
    assert result.err.count("\n") == 1
    assert "SILICONFLOW_API_KEY" in result.err and "not a language model" in result.err


def test_offline_forces_the_offline_model_even_with_a_key(fake: FakeServer) -> None:
    result = run("ask", "--offline", "--base-url", fake.base_url, "hi")
    assert result.out.startswith('You said: "hi".')
    assert "--offline" in result.err
    assert fake.requests == []


def test_no_key_with_a_loopback_base_url_talks_to_that_server(fake: FakeServer) -> None:
    fake.enqueue(Reply.text("from the local server"))
    result = run("ask", "--base-url", fake.base_url, "hi", env={})
    assert (result.status, result.out, result.err) == (0, "from the local server\n", "")
    assert "Authorization" not in fake.requests[0].headers


@pytest.mark.parametrize(
    ("base_url", "status", "says"),
    [("https://api.example.invalid/v1", 3, "No API key"), ("ftp://x", 2, "not an http(s) URL")],
)
def test_no_key_with_another_base_url_fails_instead_of_answering_offline(
    base_url: str, status: int, says: str, blocked_network: list[Any]
) -> None:
    result = run("ask", "--base-url", base_url, "hi", env={})
    assert blocked_network == []
    assert (result.status, result.out) == (status, "")
    assert says in result.err and "offline model" not in result.err  # no fallback notice
    assert result.err.count("\n") == 1
    env_result = run("ask", "hi", env={"RXCHAT_BASE_URL": base_url})
    assert env_result.status == status


# --- chat (in-process: lines from stdin, plain output) -----------------------------


def test_chat_keeps_the_context_of_earlier_turns(fake: FakeServer) -> None:
    fake.enqueue(Reply.text("Hi Ada.", usage={"prompt_tokens": 5, "completion_tokens": 2}),
                 Reply.text("You are Ada."))
    result = run("chat", "--base-url", fake.base_url, "--system", "Be kind.",
                 stdin="My name is Ada\nWho am I?\n")
    assert result.status == 0
    assert fake.requests[1].json["messages"] == [
        {"role": "system", "content": "Be kind."},
        {"role": "user", "content": "My name is Ada"},
        {"role": "assistant", "content": "Hi Ada."},
        {"role": "user", "content": "Who am I?"},
    ]
    assert "you> My name is Ada\nHi Ada.\n[2 tokens (+5 prompt), first token" in result.out
    assert "you> Who am I?\nYou are Ada.\n[first token" in result.out
    assert "\033[" not in result.out and result.err == ""


def test_no_command_means_chat(fake: FakeServer) -> None:
    fake.enqueue(Reply.text("Hello."))
    result = run("--base-url", fake.base_url, stdin="hi\n")
    assert result.status == 0 and "you> hi\nHello.\n" in result.out


def test_a_closed_stdout_pipe_ends_ask_quietly(fake: FakeServer) -> None:
    class ClosedPipe(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

    fake.enqueue(Reply.events([chunk(content="never read")], done=False).then(STALL))
    err = io.StringIO()
    status = main(["ask", "--base-url", fake.base_url, "hi"], stdout=ClosedPipe(),
                  stderr=err, stdin=io.StringIO(), env={})
    assert (status, err.getvalue()) == (0, "")
    assert fake.wait_for_disconnects(1)


def test_chat_ends_with_status_0_at_the_end_of_input(fake: FakeServer) -> None:
    result = run("chat", "--base-url", fake.base_url, stdin="")
    assert (result.status, fake.requests) == (0, [])
    assert result.out.endswith("you> \n")


def test_a_failed_turn_is_one_line_and_retry_asks_it_again(fake: FakeServer) -> None:
    fake.enqueue(Reply.error(400, {"error": {"message": "bad model"}}), Reply.text("Fine."))
    result = run("chat", "--base-url", fake.base_url, stdin="hi\n/retry\n/history\n")
    assert result.status == 0
    assert result.err.count("\n") == 1 and "bad model" in result.err
    assert "/retry" not in result.err, "the same request would fail the same way"
    assert fake.requests[1].messages == [{"role": "user", "content": "hi"}]
    assert "you: hi\nassistant: Fine.\n" in result.out


def test_a_cut_off_reply_suggests_retry(fake: FakeServer) -> None:
    fake.enqueue(Reply.events([chunk(role="assistant", content="Half a")], done=False))
    result = run("chat", "--base-url", fake.base_url, stdin="hi\n")
    assert result.err.count("\n") == 1 and "(/retry asks again)" in result.err


def test_model_system_undo_and_reset_change_the_next_request(fake: FakeServer) -> None:
    lines = ["one", "/model other-model", "two", "/undo", "three", "/reset", "four",
             "/system Talk like a pirate.", "five"]
    result = run("chat", "--base-url", fake.base_url, "--model", "first-model",
                 stdin="\n".join(lines) + "\n")
    assert result.status == 0
    sent = [(r.json["model"], [m["content"] for m in r.messages]) for r in fake.requests]
    reply = 'You said: "{}". This is the first turn of our conversation.'.format
    assert sent == [
        ("first-model", ["one"]),
        ("other-model", ["one", reply("one"), "two"]),
        ("other-model", ["one", reply("one"), "three"]),
        ("other-model", ["four"]),
        ("other-model", ["Talk like a pirate.", "four", reply("four"), "five"]),
    ]


def test_system_without_a_prompt_says_there_is_none_to_remove(fake: FakeServer) -> None:
    result = run("chat", "--base-url", fake.base_url, "--model", "m", stdin="/system\n")
    assert "no system prompt to remove" in result.out and "removed" not in result.out
    result = run("chat", "--base-url", fake.base_url, "--model", "m", "--system", "S",
                 stdin="/system\n")
    assert "[system prompt removed" in result.out


def test_save_then_load_restores_the_conversation(fake: FakeServer, tmp_path: Path) -> None:
    saved = tmp_path / "talk.json"
    lines = ["My name is Ada.", f"/save {saved}", "/reset", f"/load {saved}", "Who am I?"]
    result = run("chat", "--base-url", fake.base_url, stdin="\n".join(lines) + "\n")
    assert result.status == 0, result.err
    assert json.loads(saved.read_text())["messages"][0]["content"] == "My name is Ada."
    assert "your name is Ada" in result.out
    assert [m["content"] for m in fake.requests[1].messages][::2] == [
        "My name is Ada.", "Who am I?"
    ]


def test_slash_command_problems_are_one_line_and_the_chat_goes_on(
    fake: FakeServer, tmp_path: Path
) -> None:
    lines = ["/undo", "/save", f"/load {tmp_path / 'missing.json'}", "/frobnicate", "hi"]
    result = run("chat", "--base-url", fake.base_url, stdin="\n".join(lines) + "\n")
    assert result.status == 0
    problems = result.err.splitlines()
    assert len(problems) == 4
    assert "Nothing to undo" in problems[0] and "/save PATH" in problems[1]
    assert "missing.json" in problems[2] and "Unknown command /frobnicate" in problems[3]
    assert len(fake.requests) == 1


def test_help_and_history_and_exit(fake: FakeServer) -> None:
    result = run("chat", "--base-url", fake.base_url, stdin="/history\n/help\n/exit\nnever\n")
    assert result.status == 0
    assert "[no messages yet]" in result.out
    for command in ("/help", "/reset", "/undo", "/retry", "/system TEXT", "/model NAME",
                    "/save PATH", "/load PATH", "/history", "/exit,"):
        assert f"  {command} " in result.out
    assert fake.requests == []


@pytest.mark.parametrize("command", ["/quit", "/QUIT", "/q"])
def test_quit_is_another_name_for_exit(fake: FakeServer, command: str) -> None:
    result = run("chat", "--base-url", fake.base_url, stdin=f"{command}\nnever\n")
    assert result.status == 0 and result.err == ""
    assert fake.requests == []


def test_chat_without_a_key_talks_to_the_offline_model(fake: FakeServer) -> None:
    result = run("chat", stdin="I like tea.\nWhat do I like?\n", env={})
    assert result.status == 0
    assert result.err.count("\n") == 1 and "not a language model" in result.err
    assert "talking to the offline model" in result.out
    assert "I remember that you like tea." in result.out
    assert fake.requests == []


# --- errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "status", "words"),
    [
        (Reply.error(401, {"error": {"message": "Invalid token"}}), 3, "Invalid token"),
        (Reply.error(404, {"error": {"message": "Model does not exist"}}), 4, "Model does"),
        (Reply.error(429, {"error": {"message": "Slow down"}}, headers={"Retry-After": "999"}),
         5, "Slow down"),
        (Reply.events([chunk(role="assistant", content="cut")], done=False), 8,
         "ended before"),
        (Reply.events([{"error": {"message": "overloaded"}}]), 8, "overloaded"),
    ],
    ids=["401", "404", "429", "cut-off", "error-in-stream"],
)
def test_errors_are_one_line_with_a_status_per_family(
    fake: FakeServer, reply: Reply, status: int, words: str
) -> None:
    fake.enqueue(reply)
    result = run("ask", "--base-url", fake.base_url, "hi")
    assert result.status == status
    lines = result.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("rxchat: ")
    assert words.lower() in lines[0].lower()
    assert "Traceback" not in result.err


def test_a_server_error_after_retries_is_status_6(fake: FakeServer) -> None:
    fake.enqueue(*[Reply.error(503, {"error": {"message": "busy"}})] * 3)
    result = run("ask", "--base-url", fake.base_url, "hi")
    assert result.status == 6
    assert "busy" in result.err and len(fake.requests) == 3


def test_a_refused_connection_is_status_7() -> None:
    result = run("ask", "--base-url", f"http://127.0.0.1:{closed_port()}/v1", "hi")
    assert result.status == 7
    assert len(result.err.splitlines()) == 1


def test_an_insecure_base_url_is_refused_before_connecting() -> None:
    result = run("ask", "--base-url", "http://example.invalid/v1", "hi")
    assert result.status == ExitCode.USAGE
    assert "plain http" in result.err


def test_the_api_key_is_never_printed_even_with_debug(fake: FakeServer) -> None:
    echo = {"error": {"message": f"Key {KEY} is not valid"}}
    fake.enqueue(Reply.error(401, echo), Reply.error(401, echo))
    plain = run("ask", "--base-url", fake.base_url, "hi")
    debug = run("ask", "--debug", "--base-url", fake.base_url, "hi")
    assert plain.status == debug.status == ExitCode.AUTH
    assert "Traceback" in debug.err and "Traceback" not in plain.err
    for text in (plain.err, debug.err, plain.out, debug.out):
        assert KEY not in text


def test_ctrl_c_during_ask_closes_the_stream_and_exits_130(fake: FakeServer) -> None:
    fake.enqueue(Reply.events([chunk(role="assistant", content="partial ")], done=False)
                 .then(STALL))

    printed = threading.Event()

    class Out(io.StringIO):
        """Tells when the first delta was printed: the interrupt comes after it."""

        def write(self, text: str) -> int:
            written = super().write(text)
            if "partial" in self.getvalue():
                printed.set()
            return written

    def interrupt() -> None:
        assert printed.wait(10), "the first delta was never printed"
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt, daemon=True).start()
    out, err = Out(), io.StringIO()
    status = main(["ask", "--base-url", fake.base_url, "hi"], stdout=out, stderr=err,
                  stdin=io.StringIO(""), env={"RXCHAT_API_KEY": KEY})
    result = Run(status, out.getvalue(), err.getvalue())
    assert result.status == 130
    assert result.out == "partial \n"
    assert "cancelled" in result.err
    assert fake.wait_for_disconnects(1)


def test_exit_statuses_are_the_documented_ones() -> None:
    assert {code.name: int(code) for code in ExitCode} == {
        "OK": 0, "OTHER": 1, "USAGE": 2, "AUTH": 3, "BAD_REQUEST": 4, "RATE_LIMIT": 5,
        "SERVER": 6, "CONNECTION": 7, "STREAM": 8, "INTERRUPTED": 130,
    }


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (ConfigurationError("x"), 2), (AuthenticationError(401, "", "x"), 3),
        (BadRequestError(400, "", "x"), 4), (RateLimitError(429, "", "x"), 5),
        (ServerError(502, "", "x"), 6), (APIConnectionError("x"), 7),
        (APITimeoutError("x"), 7), (StreamError("x"), 8), (StreamInterrupted("x"), 8),
        (APIStatusError(418, "", "x"), 1), (SessionError("x"), 1), (ValueError("x"), 1),
    ],
)
def test_exit_status_by_error_family(error: Exception, status: int) -> None:
    assert exit_code_for(error) == status


# --- serve ---------------------------------------------------------------------------


def test_serve_speaks_to_the_official_openai_sdk() -> None:
    child = subprocess.Popen(
        [PYTHON, "-m", "rxchat", "serve", "--port", "0", "--delay", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert child.stdout is not None
        first = child.stdout.readline()
        base_url = first.rsplit(" ", 1)[-1].strip()
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
        sdk = openai.OpenAI(base_url=base_url, api_key="x", max_retries=0)
        stream = sdk.chat.completions.create(
            model="rxchat-offline", stream=True,
            messages=[{"role": "user", "content": "My name is Ada."},
                      {"role": "assistant", "content": "Hi Ada."},
                      {"role": "user", "content": "Who am I?"}],
        )
        pieces = [c.choices[0].delta.content or "" for c in stream if c.choices]
        assert len(pieces) > 3
        assert "your name is Ada" in "".join(pieces)
        sdk.close()
        child.send_signal(signal.SIGINT)
        assert child.wait(timeout=10) == 0
    finally:
        child.kill()
        child.wait()
        for pipe in (child.stdout, child.stderr):
            if pipe is not None:
                pipe.close()


def test_serve_in_process_stops_on_ctrl_c() -> None:
    out = io.StringIO()

    def interrupt() -> None:
        while "http://" not in out.getvalue():
            threading.Event().wait(0.01)
        port = int(_url_in(out.getvalue()).split(":")[2].split("/")[0])
        with socket.create_connection(("127.0.0.1", port), 2):
            pass  # it listens
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt, daemon=True).start()
    status = main(["serve", "--port", "0"], stdout=out, stderr=io.StringIO(), env={})
    assert status == 0
    assert "not a language model" in out.getvalue() and "stopped" in out.getvalue()


def _url_in(text: str) -> str:
    return next(w for w in text.split() if w.startswith("http://"))


def test_serve_on_a_busy_port_is_a_usage_error() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run("serve", "--port", str(port))
    assert result.status == ExitCode.USAGE
    assert f"Port {port}" in result.err and "--port" in result.err


# --- rendering -----------------------------------------------------------------------


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_only_on_a_terminal_without_no_color() -> None:
    tty = _Terminal()
    assert palette_for(tty, {"TERM": "xterm"}).enabled
    assert not palette_for(tty, {"TERM": "xterm", "NO_COLOR": "1"}).enabled
    assert not palette_for(tty, {"TERM": "xterm"}, no_color=True).enabled
    assert not palette_for(tty, {"TERM": "dumb"}).enabled
    assert not palette_for(io.StringIO(), {"TERM": "xterm"}).enabled


def test_reasoning_is_dimmed_and_labelled_before_the_answer_on_a_terminal() -> None:
    tty = _Terminal()
    view = ReplyView(tty, tty, Palette(True), Palette(True), spinner=True)
    view.tick()
    view.delta(Message(reasoning_content="hmm"))
    view.delta(Message(content="Yes."))
    view.finish()
    text = tty.getvalue()
    assert "waiting" in text and "\r\033[K" in text
    assert text.index("\033[2mthinking: ") < text.index("hmm") < text.index("Yes.")
    assert text.endswith("\033[0m\nYes.\n")


def test_plain_output_has_no_escape_codes() -> None:
    out = io.StringIO()
    view = ReplyView(out, out, Palette(False), Palette(False))
    view.tick()
    view.delta(Message(reasoning_content="hmm"))
    view.delta(Message(content="Yes."))
    view.finish()
    assert out.getvalue() == "[reasoning] hmm\n[answer] Yes.\n"


def test_stats_show_what_is_known() -> None:
    usage = Usage(prompt_tokens=12, completion_tokens=30, total_tokens=42)
    assert format_stats(usage, 0.25, 0.5) == (
        "30 tokens (+12 prompt), first token 0.25 s, 60.0 tokens/s"
    )
    assert format_stats(None, 0.25, 0.5) == "first token 0.25 s"
    assert format_stats(usage, 0.25, 0.001) == "30 tokens (+12 prompt), first token 0.25 s"
    assert format_stats(None, None, None) == "no reply"


# --- which key was refused, and the keyless route --------------------------------------


def test_a_401_names_the_key_that_was_sent(fake: FakeServer) -> None:
    refused = {"error": {"message": "Invalid token."}}
    fake.enqueue(Reply.error(401, refused), Reply.error(401, refused), Reply.error(403, refused))
    given = run("ask", "--api-key", "sk-given-12345678", "--base-url", fake.base_url, "hi",
                env={"RXCHAT_API_KEY": KEY})
    assert given.status == ExitCode.AUTH
    assert "the one from --api-key" in given.err
    assert "RXCHAT_API_KEY" not in given.err and "sk-given-12345678" not in given.err
    assert "Invalid token. " in given.err and ".." not in given.err
    from_env = run("ask", "--base-url", fake.base_url, "hi")
    assert "the one from $RXCHAT_API_KEY" in from_env.err and "--api-key" not in from_env.err
    other = run("ask", "--base-url", fake.base_url, "hi", env={"SILICONFLOW_API_KEY": KEY})
    assert "the one from $SILICONFLOW_API_KEY" in other.err
    assert KEY not in from_env.err + other.err
