"""Every failure rxchat raises or emits, as one exception tree.

Errors travel down an Observable as ``on_error`` values; the same classes are raised by
the few synchronous calls (``ChatClient(...)``, ``ChatSession.load``). Each message says
what happened and what to do, quotes the server's own message when it sent one, and
never contains the API key:

```text
RxChatError
├── ConfigurationError          bad base_url, insecure http, unreadable file
├── APIError
│   ├── APIStatusError          the server answered with an HTTP error status
│   │   ├── BadRequestError     400, 404, 413, 422
│   │   ├── AuthenticationError 401, 403, or no API key configured
│   │   ├── RateLimitError      429 (retry_after in seconds, if sent)
│   │   └── ServerError         5xx
│   ├── APIConnectionError      could not connect (DNS, refused, proxy, TLS
│   │   │                       certificate), or broke before the headers
│   │   └── APITimeoutError     connect, idle or first-delta timeout
│   ├── StreamError             malformed event, error object in the stream,
│   │                           event over the size limit, invalid UTF-8,
│   │                           wrong Content-Type
│   └── StreamInterrupted       the body ended, or the connection broke, before
│                               the reply was finished
├── SessionError                a ChatSession call that cannot be honoured now
│   ├── SessionFileError        a session file cannot be saved or loaded
│   │                           (also a ConfigurationError)
│   └── StepLimitError          a turn's tool loop made max_steps requests
├── ToolError                   a tool call failed: the tool raised, is unknown,
│                               or its arguments do not fit its schema
├── StructuredOutputError       a reply is not JSON, or not JSON that fits the
│                               schema it was asked for
├── StoreError                  a conversation store cannot be opened, read or
│   │                           written (locked, corrupt, newer schema, no server)
│   ├── ConversationNotFoundError   no conversation has the given id
│   │   └── AmbiguousConversationIdError   an id prefix that several ids start with
│   └── StoreConflict           another writer changed the conversation since
│                               this one read it (nothing was overwritten)
└── AllRoutesFailed             every route of rxchat.hedge failed before its
                                first delta (each route's error in .errors)
```

Exceptions from ``requests``/``urllib3`` are translated once, in the transport layer,
including while the body is being read.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AllRoutesFailed",
    "AuthenticationError",
    "BadRequestError",
    "ConfigurationError",
    "ConversationNotFoundError",
    "RateLimitError",
    "RxChatError",
    "ServerError",
    "SessionError",
    "SessionFileError",
    "StoreConflict",
    "StoreError",
    "StepLimitError",
    "StreamError",
    "StreamInterrupted",
    "ToolError",
    "StructuredOutputError",
    "AmbiguousConversationIdError",
]


class RxChatError(Exception):
    """Base class of every error rxchat raises or emits."""


class ConfigurationError(RxChatError):
    """The client or session was configured in a way that cannot work."""


class SessionError(RxChatError):
    """A ChatSession operation that cannot be performed in the current state."""


class APIError(RxChatError):
    """A failure talking to the chat-completions endpoint."""


class APIStatusError(APIError):
    """The server answered with an HTTP error status.

    Attributes:
        status_code: The HTTP status code.
        body: The response body as text (truncated to 4 KiB).
        server_message: The message the server gave, if one could be found.
        retry_after: Seconds the server asked to wait before retrying
            (``retry-after-ms`` or ``Retry-After``), or None.
    """

    def __init__(
        self,
        status_code: int,
        body: str,
        message: str,
        *,
        server_message: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body = body
        self.server_message = server_message
        self.retry_after = retry_after

    def __reduce__(self) -> tuple[Any, ...]:
        # The third item restores every other attribute (RateLimitError.retry_after).
        return (
            _rebuild_status_error,
            (type(self), self.status_code, self.body, str(self), self.server_message),
            dict(self.__dict__),
        )


def _rebuild_status_error(
    cls: type[APIStatusError],
    status_code: int,
    body: str,
    message: str,
    server_message: str | None,
) -> APIStatusError:
    return cls(status_code, body, message, server_message=server_message)


class BadRequestError(APIStatusError):
    """The server rejected the request itself (400, 404, 413, 422)."""


class AuthenticationError(APIStatusError):
    """The API key is missing, wrong, or lacks permission (401, 403).

    A missing key is reported with ``status_code`` 0: no request was sent.
    """


class RateLimitError(APIStatusError):
    """Too many requests (429).

    Attributes:
        retry_after: Seconds the server asked us to wait, or None.
    """


class ServerError(APIStatusError):
    """The server failed (5xx)."""


class APIConnectionError(APIError):
    """Could not connect to the server, or the connection broke before the response
    headers arrived.

    Args:
        message: What happened and what to do.
        retryable: Whether another attempt could succeed; False for a failure that
            repeats identically (an untrusted certificate, a redirect refused), which
            is then reported at once instead of being retried.
    """

    def __init__(self, message: str = "", *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class APITimeoutError(APIConnectionError):
    """The server took longer than a configured timeout: to connect, between two
    bytes of the response (idle), or to send the first delta."""


class StreamError(APIError):
    """The response stream was malformed or carried an error object.

    Attributes:
        server_message: The message of an error object sent inside the stream, if any.
        code: The error's code from the stream, if any.
    """

    def __init__(
        self, message: str, *, server_message: str | None = None, code: Any = None
    ) -> None:
        super().__init__(message)
        self.server_message = server_message
        self.code = code

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuild_stream_error,
            (type(self), str(self), self.server_message, self.code),
            dict(self.__dict__),
        )


def _rebuild_stream_error(
    cls: type[StreamError], message: str, server_message: str | None, code: Any
) -> StreamError:
    return cls(message, server_message=server_message, code=code)


class StreamInterrupted(APIError):  # noqa: N818 - public name fixed by API.md
    """The response body ended before the reply was complete.

    Neither ``data: [DONE]`` arrived nor did every choice send a ``finish_reason``
    (the body ended, or the connection broke or was reset while it was read): the reply
    was cut off, so it must not be treated as finished.
    """


class SessionFileError(SessionError, ConfigurationError):
    """A session file could not be written, or read back as a session.

    Raised by ``ChatSession.save`` and ``ChatSession.load``; the message names the file.

    Attributes:
        path: The file in question.
    """

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        super().__init__(f"Session file {os.fspath(path)!r}: {problem}")
        self.path = os.fspath(path)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_session_file_error, (self.path, str(self)))


def _rebuild_session_file_error(path: str, message: str) -> SessionFileError:
    error = SessionFileError(path, "")
    error.args = (message,)
    return error


class StoreError(RxChatError):
    """A conversation store could not be opened, read or written.

    The message names the store (a file path, or the database host without its
    password) and what to do: free the disk, upgrade rxchat for a newer schema, start
    the database server, install the ``postgres`` extra.
    """


class ConversationNotFoundError(StoreError):
    """No conversation in the store has the given id (it never existed, or was deleted).

    Attributes:
        conversation_id: The id that was asked for.
    """

    def __init__(self, conversation_id: str) -> None:
        super().__init__(
            f"No conversation {conversation_id!r} in this store; `rxchat logs list` "
            "shows the stored ones."
        )
        self.conversation_id = conversation_id

    def __reduce__(self) -> tuple[Any, ...]:
        return (ConversationNotFoundError, (self.conversation_id,))


class StoreConflict(StoreError):  # noqa: N818 - public name fixed by API.md
    """Another writer changed a stored conversation since this one read it.

    Raised by ``save_messages(..., expected=...)`` when the stored history is no longer
    the one the writer resumed (two ``rxchat chat -c`` windows, two workers resuming
    one id): nothing is overwritten. A session attached to the store reports it and
    keeps its history; save it as a new conversation to keep both.

    Attributes:
        conversation_id: The conversation another writer changed.
    """

    def __init__(self, conversation_id: str) -> None:
        super().__init__(
            f"Conversation {conversation_id!r} was changed by another writer since this "
            "one read it; nothing was overwritten. Continue as a new conversation to keep "
            "both, or resume it again to go on from what is stored."
        )
        self.conversation_id = conversation_id

    def __reduce__(self) -> tuple[Any, ...]:
        return (StoreConflict, (self.conversation_id,))


class StepLimitError(SessionError):
    """A turn's tool loop reached ``max_steps`` requests without a final answer.

    Every step made so far stays committed (each tool-call message with its tool
    results); ``ChatSession.regenerate()`` continues from there.

    Attributes:
        max_steps: The limit that was reached.
    """

    def __init__(self, max_steps: int) -> None:
        super().__init__(
            f"The model was still calling tools after {max_steps} requests (max_steps), so "
            "the turn stopped. Its steps are kept: call regenerate() to continue, or "
            "raise ChatSession(max_steps=...)."
        )
        self.max_steps = max_steps

    def __reduce__(self) -> tuple[Any, ...]:
        return (StepLimitError, (self.max_steps,))


class ToolError(RxChatError):
    """A tool call could not give a result; the model got this message as the result.

    The tool raised (the exception is ``__cause__``), no tool has the called name, or
    the arguments are not JSON that fits the tool's schema. Found in
    ``ChatState.tool_errors``; the turn goes on, so the model can recover.

    Attributes:
        tool_call_id: The id of the call that failed.
        tool_name: The name the model called.
    """

    def __init__(self, message: str, *, tool_call_id: str | None, tool_name: str | None) -> None:
        super().__init__(message)
        self.tool_call_id, self.tool_name = tool_call_id, tool_name

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_tool_error, (str(self), self.tool_call_id, self.tool_name))


def _rebuild_tool_error(message: str, call_id: str | None, name: str | None) -> ToolError:
    return ToolError(message, tool_call_id=call_id, tool_name=name)


class AllRoutesFailed(RxChatError):  # noqa: N818 - public name fixed by API.md
    """Every route of `rxchat.hedge` failed before sending its first delta.

    The message names each route and how it failed; each failure is kept, as raised,
    in ``errors``. Give route clients ``max_retries=0`` to move on to the next route
    at once instead of retrying a failing one first.

    Attributes:
        routes: Each route's name (``"<model> at <base URL>"``), in the order tried.
        errors: Each route's error, in the same order.
    """

    def __init__(self, routes: Sequence[str], errors: Sequence[BaseException]) -> None:
        self.routes = tuple(routes)
        self.errors = tuple(errors)
        lines = "; ".join(
            f"{route}: {type(error).__name__}: {error}"
            for route, error in zip(self.routes, self.errors, strict=True)
        )
        super().__init__(
            f"Every route failed before answering ({len(self.errors)} tried) - {lines}. "
            "Check each route's base URL, model and API key, or try again later."
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (AllRoutesFailed, (self.routes, self.errors))


class StructuredOutputError(RxChatError):
    """A reply asked for as JSON is not JSON, or not JSON that fits its schema.

    Raised (emitted) by `rxchat.operators.partial_json`, `json_items`, `parsed` and
    `partial_arguments` the moment a completed part cannot match: the stream is
    disposed there, so the rest of the reply is not read.

    Attributes:
        text: The raw text received up to the failure.
        errors: What failed, one message per problem (for a pydantic model, its
            validation errors rendered as text).
        path: Where in the value the first problem is (e.g. ``"$.items[2].price"``),
            or None when the text itself is not JSON.
    """

    def __init__(
        self, message: str, *, text: str = "", errors: tuple[str, ...] = (),
        path: str | None = None,
    ) -> None:
        super().__init__(message)
        self.text, self.errors, self.path = text, tuple(errors) or (message,), path

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_structured_error, (str(self), self.text, self.errors, self.path))


def _rebuild_structured_error(
    message: str, text: str, errors: tuple[str, ...], path: str | None
) -> StructuredOutputError:
    return StructuredOutputError(message, text=text, errors=errors, path=path)


class AmbiguousConversationIdError(ConversationNotFoundError):
    """An id prefix that more than one stored conversation's id starts with.

    Raised by `rxchat.stores.resolve_conversation_id` (and so by ``rxchat logs show``,
    ``rxchat chat --cid`` and the other commands that take an id: any unique prefix
    will do, as in git). The message lists the candidates on one line.

    Attributes:
        conversation_id: The prefix that was given.
        candidates: Ids that start with it, sorted (at most `SHOWN` of them, then
            ``"..."`` if there are more).
    """

    SHOWN = 5
    """How many candidates the message names."""

    def __init__(self, conversation_id: str, candidates: tuple[str, ...]) -> None:
        shown = ", ".join(candidates[:self.SHOWN])
        more = ", ..." if len(candidates) > self.SHOWN else ""
        RxChatError.__init__(
            self,
            f"The id {conversation_id!r} is ambiguous: it starts {shown}{more}; "
            "type more of the id.",
        )
        self.conversation_id = conversation_id
        self.candidates = candidates

    def __reduce__(self) -> tuple[Any, ...]:
        return (AmbiguousConversationIdError, (self.conversation_id, self.candidates))
