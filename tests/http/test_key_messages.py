"""What an authentication failure says: which key was sent, and the keyless route."""

from __future__ import annotations

from typing import Any

import pytest

from rxchat import ChatClient, create_stream_completion
from rxchat.errors import AuthenticationError, BadRequestError
from rxchat.testing import FakeServer, Reply
from tests.conftest import PARAMS, collect


def test_no_key_offers_the_keyless_route(blocked_network: list[Any]) -> None:
    client = ChatClient("https://api.example.invalid/v1", max_retries=0)
    result = collect(create_stream_completion(PARAMS, client=client))
    assert isinstance(result.error, AuthenticationError)
    message = str(result.error)
    assert "SILICONFLOW_API_KEY" in message and "ChatClient(api_key=...)" in message
    assert "`rxchat serve`" in message and "RXCHAT_BASE_URL" in message
    assert "rxchat.offline_client()" in message
    assert blocked_network == []


@pytest.mark.parametrize(
    ("api_key", "env", "named"),
    [("sk-argument-123456", {}, "the api_key argument"),
     (None, {"RXCHAT_API_KEY": "sk-env-12345678"}, "$RXCHAT_API_KEY"),
     (None, {"SILICONFLOW_API_KEY": "sk-env-12345678"}, "$SILICONFLOW_API_KEY")],
)
def test_a_401_names_where_the_key_came_from(
    server: FakeServer, monkeypatch: pytest.MonkeyPatch, api_key: str | None,
    env: dict[str, str], named: str,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    server.enqueue(Reply.error(401, {"error": {"message": "Invalid API key."}}))
    with ChatClient(server.base_url, api_key, max_retries=0) as client:
        result = collect(create_stream_completion(PARAMS, client=client))
    assert isinstance(result.error, AuthenticationError)
    message = str(result.error)
    assert f"the one from {named}" in message
    assert "Invalid API key. The API key sent" in message and ".." not in message
    assert "12345678" not in message


def test_a_401_with_no_key_sent_says_so(server: FakeServer) -> None:
    server.enqueue(Reply.error(401, {"error": {"message": "Missing bearer"}}))
    with ChatClient(server.base_url, max_retries=0) as client:  # loopback: none needed
        result = collect(create_stream_completion(PARAMS, client=client))
    assert "No API key was sent" in str(result.error)
    assert "Missing bearer." in str(result.error)


def test_a_server_message_ending_with_a_full_stop_gets_no_second_one(
    server: FakeServer,
) -> None:
    said = "The model `x` does not exist or you do not have access to it."
    server.enqueue(Reply.error(404, {"error": {"message": said}}))
    with ChatClient(server.base_url, "sk-test-key", max_retries=0) as client:
        result = collect(create_stream_completion(PARAMS, client=client))
    assert isinstance(result.error, BadRequestError)
    assert f"{said} Fix the request" in str(result.error)
    assert ".." not in str(result.error)
