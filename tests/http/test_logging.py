"""Secrets and debug logging: the key never leaves the Authorization header.

The key is checked in every log record (message, arguments, exception text) of full
requests that succeed, retry and fail, in every error's ``str``/``repr``, and plain http
to a remote host is refused before any name lookup or connection.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from rxchat import ChatClient, create_stream_completion
from rxchat._http.redact import redact_headers
from rxchat.errors import APIConnectionError, ConfigurationError
from rxchat.testing import STALL, FakeServer, Reply, chunk, closed_port
from tests.conftest import PARAMS, collect

KEY = "sk-live-0123456789ABCDEFGHIJwxyz"


def leaks(text: str) -> bool:
    """Whether ``text`` shows the key, or enough of it to matter."""
    return KEY in text or KEY[3:-4] in text


def record_texts(records: list[logging.LogRecord]) -> Iterator[str]:
    for record in records:
        yield record.getMessage()
        yield str(record.msg)
        yield repr(record.args)
        yield record.exc_text or ""


@pytest.fixture
def debug_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)  # every logger: rxchat, urllib3, requests
    return caplog


def test_debug_log_shows_the_request_and_never_the_key(
    server: FakeServer, debug_log: pytest.LogCaptureFixture
) -> None:
    echo = {"error": {"message": f"upstream saw key {KEY}"}}
    server.enqueue(
        Reply.error(503, echo, headers={"retry-after-ms": "10"}),
        Reply.text("hello there"),
        Reply.error(401, {"error": {"message": f"Incorrect API key provided: {KEY}"}}),
        Reply.events([chunk(content="x"), {"error": {"message": f"bad {KEY}"}}], done=False),
        Reply.raw(f"not a stream {KEY}".encode(), headers={"Content-Type": "text/plain"},
                  framing="length"),
        Reply.events([chunk(content="y")], done=False).then(STALL),
    )
    client = ChatClient(server.base_url, KEY, max_retries=1, timeout=(1, 0.3))
    errors: list[BaseException] = []
    for _ in range(5):
        result = collect(create_stream_completion(PARAMS, client=client))
        if result.error is not None:
            errors.append(result.error)
    refused = ChatClient(f"http://127.0.0.1:{closed_port()}/v1", KEY, max_retries=0)
    result = collect(create_stream_completion(PARAMS, client=refused))
    assert isinstance(result.error, APIConnectionError)
    errors.append(result.error)
    assert len(errors) == 5  # 401, stream error, content type, idle timeout, refused

    for error in errors:
        for text in (str(error), repr(error), str(vars(error))):
            assert not leaks(text), text
    texts = list(record_texts(debug_log.records))
    assert not [t for t in texts if leaks(t)]

    rxchat_lines = [r.getMessage() for r in debug_log.records if r.name == "rxchat"]
    url = f"{server.base_url}/chat/completions"
    assert any(f"POST {url}" in line and "Bearer sk-…wxyz" in line for line in rxchat_lines)
    assert any(f"POST {url} -> 200" in line and " s" in line for line in rxchat_lines)
    assert any(f"POST {url} -> 401" in line for line in rxchat_lines)
    assert any("retrying in" in line and "503" in line for line in rxchat_lines)
    assert any("completed after" in line and "first delta at" in line for line in rxchat_lines)
    assert any("APITimeoutError after" in line for line in rxchat_lines)
    assert any("failed after" in line and "refused" in line for line in rxchat_lines)


def test_no_record_when_logging_is_off(
    server: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="rxchat")
    client = ChatClient(server.base_url, KEY, max_retries=0)
    assert collect(create_stream_completion(PARAMS, client=client)).completed
    assert [r for r in caplog.records if r.name == "rxchat"] == []


@pytest.mark.parametrize(
    ("headers", "shown"),
    [
        ({"Authorization": f"Bearer {KEY}"}, {"Authorization": "Bearer sk-…wxyz"}),
        ({"authorization": "Bearer short-key"}, {"authorization": "Bearer ***"}),
        ({"api-key": KEY, "X-Api-Key": "abc"}, {"api-key": "sk-…wxyz", "X-Api-Key": "***"}),
        ({"Cookie": "session=1", "Accept": "text/event-stream"},
         {"Cookie": "***", "Accept": "text/event-stream"}),
    ],
)
def test_redacted_headers(headers: dict[str, str], shown: dict[str, str]) -> None:
    assert redact_headers(headers) == shown


def test_repr_and_str_of_the_client_hide_the_key() -> None:
    client = ChatClient("https://api.example.com/v1", KEY)
    assert not leaks(repr(client)) and not leaks(str(client))


# --- Plain http is refused before any name lookup or connection -------------------------


@pytest.mark.parametrize(
    "url",
    ["http://api.example.com/v1", "http://10.0.0.7:8000/v1", "http://localhost.evil.com/v1",
     "http://127.0.0.1.nip.io/v1"],
)
def test_plain_http_to_a_remote_host_is_refused_before_any_lookup(
    url: str, blocked_network: list[Any]
) -> None:
    with pytest.raises(ConfigurationError, match="plain http") as info:
        ChatClient(url, KEY)
    assert not leaks(str(info.value))
    assert blocked_network == []


def test_plain_http_from_the_environment_is_an_error_not_a_request(
    monkeypatch: pytest.MonkeyPatch, blocked_network: list[Any]
) -> None:
    monkeypatch.setenv("RXCHAT_BASE_URL", "http://api.example.com/v1")
    monkeypatch.setenv("RXCHAT_API_KEY", KEY)
    result = collect(create_stream_completion(PARAMS))
    assert isinstance(result.error, ConfigurationError)
    assert blocked_network == []


def test_allow_insecure_http_lets_the_request_go(blocked_network: list[Any]) -> None:
    client = ChatClient("http://api.example.com/v1", KEY, allow_insecure_http=True,
                        max_retries=0)
    result = collect(create_stream_completion(PARAMS, client=client))
    assert isinstance(result.error, APIConnectionError)
    assert blocked_network, "the opt-in did not reach the network layer"
    assert not leaks(str(result.error))
