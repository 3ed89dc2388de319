"""`rxchat.offline_client()`: the keyless path for the Python API."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from rxchat import ChatClient, ChatSession, create_stream_completion, offline_client
from rxchat import operators as rxops
from rxchat.errors import APIConnectionError
from tests.conftest import ENV_VARIABLES, PARAMS


def test_streams_from_the_offline_model_without_a_key() -> None:
    with offline_client() as client:
        assert client.base_url.startswith("http://127.0.0.1:")
        reply = create_stream_completion(PARAMS, client=client).pipe(rxops.final_message())
        message = reply.run()
    assert message.content == 'You said: "hi". This is the first turn of our conversation.'
    assert message.finish_reason == "stop"


def test_a_session_keeps_context() -> None:
    with offline_client() as client:
        session = ChatSession(client)
        session.send("My name is Ann.").run()
        answer = session.send("Who am I?").pipe(rxops.final_message()).run()
    assert "your name is Ann" in (answer.content or "")


def test_leaving_the_block_stops_the_server_and_its_threads() -> None:
    before = threading.active_count()
    with offline_client() as client:
        create_stream_completion(PARAMS, client=client).run()
    with pytest.raises(APIConnectionError), ChatClient(client.base_url, max_retries=0) as late:
        create_stream_completion(PARAMS, client=late).run()
    assert threading.active_count() <= before + 1  # at most a finishing reader thread


def test_delay_paces_the_words() -> None:
    with offline_client(delay=0.02) as client:
        started = time.monotonic()
        create_stream_completion(PARAMS, client=client).run()
        assert time.monotonic() - started >= 0.1  # 10 words, 0.02 s apart


def test_the_type_checked_user_program_runs_without_a_key() -> None:
    """CI type-checks tests/typecheck/user_program.py; here it must also run and print."""
    program = Path(__file__).parents[1] / "typecheck" / "user_program.py"
    env = {k: v for k, v in os.environ.items() if k not in ENV_VARIABLES}
    done = subprocess.run([sys.executable, str(program)], capture_output=True, text=True,
                          env=env, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        'You said: "hello". This is the first turn of our conversation.', "stop", "5",
    ]


def test_sessions_ask_for_usage_and_keep_it() -> None:
    """The offline server sends usage only when asked, as OpenAI does: sessions ask."""
    from rxchat.testing import FakeServer

    with FakeServer() as server, ChatClient(server.base_url, max_retries=0) as client:
        session = ChatSession(client)
        reply = session.send("hi").pipe(rxops.final_message()).run()
        assert server.requests[0].json["stream_options"] == {"include_usage": True}
        assert reply.usage is not None and reply.usage.total_tokens > 0
        assert session.messages[-1].usage == reply.usage  # kept in the history
        quiet = ChatSession(client, params={"stream_options": {"include_usage": False}})
        assert quiet.send("hi").pipe(rxops.final_message()).run().usage is None
        assert server.requests[1].json["stream_options"] == {"include_usage": False}
        session.dispose()
        quiet.dispose()
