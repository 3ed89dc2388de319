"""The exception tree: families, attributes and pickling."""

from __future__ import annotations

import pickle

import pytest

from rxchat import errors
from rxchat.errors import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    RateLimitError,
    RxChatError,
    ServerError,
    SessionError,
    StreamError,
    StreamInterrupted,
)


@pytest.mark.parametrize(
    ("child", "parent"),
    [
        (ConfigurationError, RxChatError), (SessionError, RxChatError), (APIError, RxChatError),
        (APIStatusError, APIError), (BadRequestError, APIStatusError),
        (AuthenticationError, APIStatusError), (RateLimitError, APIStatusError),
        (ServerError, APIStatusError), (APIConnectionError, APIError),
        (APITimeoutError, APIConnectionError), (StreamError, APIError),
        (StreamInterrupted, APIError),
    ],
)
def test_tree(child: type[Exception], parent: type[Exception]) -> None:
    assert issubclass(child, parent)


def test_every_exported_error_is_an_rxchat_error() -> None:
    for name in errors.__all__:
        assert issubclass(getattr(errors, name), RxChatError)


def test_stream_errors_are_not_connection_errors() -> None:
    # Retries are for connection failures; a malformed or cut stream is not retried.
    assert not issubclass(StreamError, APIConnectionError)
    assert not issubclass(StreamInterrupted, APIConnectionError)


@pytest.mark.parametrize(
    "error",
    [
        APIStatusError(418, "teapot", "HTTP 418", server_message="teapot"),
        BadRequestError(400, "{}", "bad", server_message="m"),
        RateLimitError(429, "{}", "slow", server_message="s", retry_after=2.5),
        StreamError("broken", server_message="srv", code=400),
        StreamInterrupted("cut"),
        APITimeoutError("late"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_errors_pickle_with_their_attributes(error: Exception) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    for name in ("status_code", "body", "server_message", "code", "retry_after"):
        assert getattr(copy, name, None) == getattr(error, name, None), name
