"""ChatClient: configuration from arguments and environment, and keeping the key secret."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from rxchat import ChatClient, create_stream_completion
from rxchat._client import DEFAULT_BASE_URL, DEFAULT_MODEL, DEFAULT_TIMEOUT
from rxchat._http.status import status_error
from rxchat.errors import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    RateLimitError,
)
from rxchat.testing import FakeServer, Reply
from tests.conftest import PARAMS, collect

KEY = "sk-very-secret-0123456789"


# --- Resolution order ----------------------------------------------------------------


def test_defaults(blocked_network: list[Any]) -> None:
    client = ChatClient(api_key="k")
    assert client.base_url == DEFAULT_BASE_URL
    assert client.model == DEFAULT_MODEL
    assert client.timeout == DEFAULT_TIMEOUT
    assert all(0 < t < float("inf") for t in DEFAULT_TIMEOUT)
    assert client.max_retries == 2
    assert isinstance(client.session, requests.Session)
    assert client.completions_url == "https://api.siliconflow.cn/v1/chat/completions"


def test_environment_is_used_when_arguments_are_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RXCHAT_BASE_URL", "https://api.deepseek.com/v1/")
    monkeypatch.setenv("RXCHAT_MODEL", "deepseek-chat")
    client = ChatClient()
    assert client.base_url == "https://api.deepseek.com/v1"
    assert client.model == "deepseek-chat"


def test_arguments_win_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RXCHAT_BASE_URL", "https://env.example/v1")
    monkeypatch.setenv("RXCHAT_MODEL", "env-model")
    monkeypatch.setenv("RXCHAT_API_KEY", "env-key")
    client = ChatClient("https://arg.example/v1", "arg-key", model="arg-model")
    assert (client.base_url, client.model) == ("https://arg.example/v1", "arg-model")
    assert client.build_headers()["Authorization"] == "Bearer arg-key"


@pytest.mark.parametrize(
    ("rxchat_key", "siliconflow_key", "expected"),
    [("rx", "sf", "rx"), (None, "sf", "sf"), ("rx", None, "rx"), ("", "sf", "sf")],
)
def test_key_resolution_order(
    monkeypatch: pytest.MonkeyPatch, rxchat_key: str | None, siliconflow_key: str | None,
    expected: str,
) -> None:
    if rxchat_key is not None:
        monkeypatch.setenv("RXCHAT_API_KEY", rxchat_key)
    if siliconflow_key is not None:
        monkeypatch.setenv("SILICONFLOW_API_KEY", siliconflow_key)
    client = ChatClient()
    assert client.has_api_key
    assert client.build_headers()["Authorization"] == f"Bearer {expected}"


def test_params_model_default_and_stream_flag() -> None:
    client = ChatClient(api_key="k", model="m1")
    assert b'"model": "m1"' in client.build_body({"messages": []})
    assert b'"model": "m2"' in client.build_body({"model": "m2", "messages": []})
    assert b'"stream": true' in client.build_body({"stream": False, "messages": []})


def test_unencodable_params_are_a_configuration_error() -> None:
    client = ChatClient(api_key="k")
    with pytest.raises(ConfigurationError, match="JSON"):
        client.build_body({"messages": [], "temperature": object()})


# --- Secrets -------------------------------------------------------------------------


def test_repr_never_contains_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    assert KEY not in repr(ChatClient(api_key=KEY))
    assert "api_key=<set>" in repr(ChatClient(api_key=KEY))
    monkeypatch.setenv("SILICONFLOW_API_KEY", KEY)
    client = ChatClient()
    assert KEY not in repr(client) and KEY not in str(client)
    assert KEY not in repr(vars(client).get("headers"))


def test_missing_key_is_an_authentication_error_before_any_request(
    blocked_network: list[Any],
) -> None:
    client = ChatClient("https://api.example.com/v1")
    assert not client.has_api_key
    result = collect(create_stream_completion(PARAMS, client=client))
    error = result.error
    assert isinstance(error, AuthenticationError)
    assert "SILICONFLOW_API_KEY" in str(error) and "RXCHAT_API_KEY" in str(error)
    assert error.status_code == 0
    assert blocked_network == []


def test_missing_key_with_the_default_client(
    monkeypatch: pytest.MonkeyPatch, blocked_network: list[Any]
) -> None:
    monkeypatch.setenv("RXCHAT_BASE_URL", "https://api.example.com/v1")
    result = collect(create_stream_completion(PARAMS))
    assert isinstance(result.error, AuthenticationError)
    assert blocked_network == []


def test_loopback_server_needs_no_key(server: FakeServer) -> None:
    server.enqueue(Reply.text("hi"))
    result = collect(create_stream_completion(PARAMS, client=ChatClient(server.base_url)))
    assert result.completed
    assert "Authorization" not in server.requests[0].headers


@pytest.mark.parametrize(
    "url", ["http://api.example.com/v1", "http://10.0.0.5:8000/v1", "http://[2001:db8::1]/v1"]
)
def test_plain_http_to_a_remote_host_is_refused(url: str, blocked_network: list[Any]) -> None:
    with pytest.raises(ConfigurationError, match="plain http"):
        ChatClient(url, KEY)
    client = ChatClient(url, KEY, allow_insecure_http=True)
    assert client.base_url == url
    assert blocked_network == []


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8000/v1", "http://localhost:11434/v1", "http://[::1]:8000/v1",
            "http://127.8.9.10/v1"],
)
def test_plain_http_to_loopback_is_allowed(url: str) -> None:
    assert ChatClient(url, KEY).base_url == url


@pytest.mark.parametrize("url", ["ftp://example.com/v1", "api.openai.com/v1", "https://"])
def test_base_url_must_be_http(url: str) -> None:
    with pytest.raises(ConfigurationError, match="not an http"):
        ChatClient(url, KEY)


def test_key_never_appears_in_an_http_error(server: FakeServer) -> None:
    client = ChatClient(server.base_url, KEY, max_retries=0)
    echo = {"error": {"message": f"Incorrect API key provided: {KEY}", "code": "invalid_api_key"}}
    server.enqueue(Reply.error(401, echo))
    error = collect(create_stream_completion(PARAMS, client=client)).error
    assert isinstance(error, AuthenticationError)
    assert "Incorrect API key provided" in str(error)
    for text in (str(error), repr(error), error.body, error.server_message or ""):
        assert KEY not in text


def test_key_never_appears_in_a_stream_error(server: FakeServer) -> None:
    client = ChatClient(server.base_url, KEY, max_retries=0)
    server.enqueue(Reply.events([{"error": {"message": f"bad key {KEY}"}}], done=False))
    error = collect(create_stream_completion(PARAMS, client=client)).error
    assert error is not None
    assert "bad key" in str(error)
    assert KEY not in str(error) and KEY not in str(getattr(error, "server_message", ""))


def test_key_never_appears_in_a_content_type_error(server: FakeServer) -> None:
    client = ChatClient(server.base_url, KEY, max_retries=0)
    server.enqueue(Reply.raw(f"your key is {KEY}".encode(), headers={"Content-Type": "text/plain"},
                             framing="length"))
    error = collect(create_stream_completion(PARAMS, client=client)).error
    assert error is not None and KEY not in str(error)


# --- status_error --------------------------------------------------------------------


def test_status_error_retry_after_headers() -> None:
    error = status_error(429, "{}", {"retry-after-ms": "1500"}, "u")
    assert isinstance(error, RateLimitError) and error.retry_after == 1.5
    error = status_error(429, "{}", {"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, "u")
    assert isinstance(error, RateLimitError) and error.retry_after is None


def test_status_error_unknown_status_is_the_base_class() -> None:
    error = status_error(418, "I'm a teapot", {}, "u")
    assert type(error).__name__ == "APIStatusError"
    assert error.server_message == "I'm a teapot"


@pytest.mark.parametrize("timeout", ["abc", (1,), (1, 2, 3), 0, -1, (5, 0), None, True])
def test_an_unusable_timeout_is_refused_when_the_client_is_built(timeout: object) -> None:
    with pytest.raises(ConfigurationError, match=r"timeout=.* is not usable"):
        ChatClient("http://127.0.0.1:1/v1", timeout=timeout)  # type: ignore[arg-type]


@pytest.mark.parametrize(("timeout", "kept"), [(5, 5.0), ((1, 2.5), (1.0, 2.5))])
def test_a_usable_timeout_is_kept(timeout: Any, kept: object) -> None:
    assert ChatClient("http://127.0.0.1:1/v1", timeout=timeout).timeout == kept


def test_409_is_a_retried_status_error_not_a_bad_request() -> None:
    error = status_error(409, '{"error": {"message": "busy"}}', {}, "u")
    assert type(error) is APIStatusError and not isinstance(error, BadRequestError)
    assert "busy" in str(error) and "retry shortly" in str(error)
