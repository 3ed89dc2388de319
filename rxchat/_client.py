"""ChatClient: where requests go, with which key, model and limits.

Configuration is resolved once, when the client is built: argument, else environment
variable, else default. The API key is kept out of ``repr``, logs and error messages.
"""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from ._http import transport as _transport
from ._models import ChatCompletionParams, message_to_wire
from ._wire.sse import DEFAULT_MAX_EVENT_BYTES
from .errors import AuthenticationError, ConfigurationError

if TYPE_CHECKING:  # only the transport layer imports requests at run time
    import requests

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_FIRST_DELTA_TIMEOUT",
    "DEFAULT_MODEL",
    "DEFAULT_TIMEOUT",
    "ChatClient",
]

DEFAULT_BASE_URL = "https://api.siliconflow.cn/v1"
"""SiliconFlow's OpenAI-compatible endpoint, used when nothing else is configured."""

DEFAULT_MODEL = "Qwen/Qwen2.5-7B-Instruct"
"""A SiliconFlow chat model available on its free tier."""

DEFAULT_TIMEOUT: tuple[float, float] = (10.0, 120.0)
"""``(connect, read)`` seconds: 10 s to connect; 120 s of silence between bytes (idle).

The idle timeout also bounds the wait for the response headers. Some providers send
their headers only once the model starts answering, after prefill and queueing, so it
is generous but finite: a stalled server never hangs a subscriber.
"""

DEFAULT_FIRST_DELTA_TIMEOUT = 300.0
"""Seconds from sending a request to its first delta: 5 minutes.

Keep-alive comments (``: ping``, ``: OPENROUTER PROCESSING``) do not reset it, so a
provider that queues a request forever while keeping the connection alive still ends
in an `APITimeoutError`. Reasoning models stream their thinking
as ``reasoning_content`` deltas, so the first delta comes when prefill is done, not when
the answer starts; prefill of a 100k-token prompt plus queueing on a busy provider can
take a minute or two, and 5 minutes leaves room for that while bounding a stuck request.
"""

KEY_VARIABLES = ("RXCHAT_API_KEY", "SILICONFLOW_API_KEY")

_E = TypeVar("_E", bound=BaseException)


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class ChatClient:
    """Where and how chat-completion requests are sent.

    Args:
        base_url: The API root, e.g. ``https://api.openai.com/v1``; else
            ``RXCHAT_BASE_URL``, else ``https://api.siliconflow.cn/v1``.
        api_key: The bearer token; else ``RXCHAT_API_KEY``, else
            ``SILICONFLOW_API_KEY``. A loopback server may be used without one.
        model: Model used when the params name none; else ``RXCHAT_MODEL``, else
            ``Qwen/Qwen2.5-7B-Instruct``.
        timeout: Seconds, or ``(connect, read)`` where read is the longest silence
            allowed between bytes; default ``(10.0, 120.0)``.
        max_retries: Further attempts after a 408, 409, 429, 5xx, connection failure,
            timeout or a body cut off before its first delta; only while no delta was
            emitted (see ``docs/reliability.md`` for the backoff and ``Retry-After``).
        first_delta_timeout: Seconds from sending the request to the first delta,
            which keep-alive comments do not reset; default 300 (five minutes);
            None for no limit.
        session: A ``requests.Session`` to use; by default the client owns one. Its
            ``verify``, ``cert``, ``proxies``, ``params`` and ``headers`` apply, and
            ``verify``/``cert``/``proxies`` win over ``REQUESTS_CA_BUNDLE`` and the
            proxy variables. With your own session, disposing closes the socket at
            once only after the response headers have arrived; the client's own
            session can also abort a request whose headers have not come yet
            (while connecting, during the TLS handshake, through a proxy).
            Connections are reused: a stream that ended with ``[DONE]`` hands its
            connection back to the pool.
        headers: Extra headers sent with every request.
        allow_insecure_http: Send the key over plain http to a non-loopback host.
        max_event_bytes: Largest single stream event accepted (default 1 MiB).

    Raises:
        ConfigurationError: The base URL is not http(s), or is plain http to a
            non-loopback host without ``allow_insecure_http=True``; or ``timeout`` is
            not a positive number or a pair of them.
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        model: str | None = None,
        timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        max_retries: int = 2,
        session: requests.Session | None = None,
        headers: Mapping[str, str] | None = None,
        allow_insecure_http: bool = False,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        first_delta_timeout: float | None = DEFAULT_FIRST_DELTA_TIMEOUT,
    ) -> None:
        env = os.environ
        url = (base_url or env.get("RXCHAT_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigurationError(
                f"base_url {url!r} is not an http(s) URL; use something like "
                "'https://api.siliconflow.cn/v1'."
            )
        loopback = _is_loopback(parts.hostname)
        if parts.scheme == "http" and not loopback and not allow_insecure_http:
            raise ConfigurationError(
                f"Refusing to send the API key over plain http to {parts.hostname}; "
                "use https, or pass allow_insecure_http=True if the network is "
                "trusted."
            )
        self.base_url = url
        self._api_key = api_key or next((env[v] for v in KEY_VARIABLES if env.get(v)), None)
        # where the key came from, named in a 401/403 message (the CLI names --api-key)
        self._key_source: str | None = "the api_key argument" if api_key else next(
            (f"${v}" for v in KEY_VARIABLES if env.get(v)), None)
        self.model = model or env.get("RXCHAT_MODEL") or DEFAULT_MODEL
        self.timeout = _checked_timeout(timeout)
        self.max_retries = max(0, int(max_retries))
        self.session = session if session is not None else _transport.new_session()
        self.headers = dict(headers or {})
        self.max_event_bytes = max_event_bytes
        self.first_delta_timeout = first_delta_timeout
        self._loopback = loopback

    def __repr__(self) -> str:
        key = "set" if self._api_key else "missing"
        return f"ChatClient(base_url={self.base_url!r}, model={self.model!r}, api_key=<{key}>)"

    @property
    def has_api_key(self) -> bool:
        """Whether an API key is configured (the key itself is never exposed)."""
        return self._api_key is not None

    @property
    def completions_url(self) -> str:
        """The URL requests are POSTed to."""
        return f"{self.base_url}/chat/completions"

    def build_body(self, params: ChatCompletionParams | Mapping[str, Any]) -> bytes:
        """Encode a request body: params as given, ``stream: true``, default model.

        Raises:
            ConfigurationError: The params cannot be encoded as JSON.
        """
        body = dict(params)
        body["messages"] = [message_to_wire(m) for m in body.get("messages") or ()]
        body.setdefault("model", self.model)
        if not body["model"]:
            body["model"] = self.model
        body["stream"] = True
        try:
            return json.dumps(body, ensure_ascii=False).encode("utf-8")
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(
                f"The request params cannot be sent as JSON: {exc}. Pass only "
                "strings, numbers, lists and dicts."
            ) from None

    def build_headers(self) -> dict[str, str]:
        """Request headers, including Authorization.

        Raises:
            AuthenticationError: No key is configured and the server is not loopback.
        """
        headers = {
            "Content-Type": "application/json",
            "Accept": "text/event-stream",
            "Accept-Encoding": "identity",
            **self.headers,
        }
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        elif not self._loopback:
            raise AuthenticationError(
                0,
                "",
                "No API key is configured: set SILICONFLOW_API_KEY (or RXCHAT_API_KEY "
                "with RXCHAT_BASE_URL for another provider), or pass "
                "ChatClient(api_key=...). To try rxchat without a key, run `rxchat serve` "
                "and set RXCHAT_BASE_URL to the URL it prints, or use "
                "`with rxchat.offline_client() as client:`.",
            )
        return headers

    def redact(self, text: str) -> str:
        """``text`` with the API key, if it occurs, replaced by ``***``.

        Keys shorter than 8 characters (test placeholders like ``"k"``) are left
        alone: replacing every ``k`` would garble the message and protect nothing.
        """
        if self._api_key and len(self._api_key) >= 8 and self._api_key in text:
            return text.replace(self._api_key, "***")
        return text

    def redact_error(self, error: _E) -> _E:
        """Remove the API key from an error's message and text attributes, in place.

        Returns:
            The same error, for chaining.
        """
        if self._api_key:
            error.args = tuple(self.redact(a) if isinstance(a, str) else a for a in error.args)
            for name in ("body", "server_message"):
                value = getattr(error, name, None)
                if isinstance(value, str):
                    setattr(error, name, self.redact(value))
        return error

    def close(self) -> None:
        """Close the client's HTTP connections (the idle pooled ones at once)."""
        _transport.close_session(self.session)

    def __enter__(self) -> ChatClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _checked_timeout(timeout: object) -> float | tuple[float, float]:
    """``timeout`` if it is a positive number or a pair of them, else a clear error."""

    def positive(value: object) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0

    if positive(timeout):
        return float(timeout)  # type: ignore[arg-type]
    if isinstance(timeout, tuple) and len(timeout) == 2 and all(map(positive, timeout)):
        return (float(timeout[0]), float(timeout[1]))
    raise ConfigurationError(
        f"timeout={timeout!r} is not usable: pass seconds (e.g. 60) or a "
        "(connect, read) pair of seconds (e.g. (10, 120)); both must be finite."
    )


def require_client(value: object, call: str, hint: str = "") -> None:
    """Check, at the call, that ``client`` is a `ChatClient` or None.

    Args:
        value: What the caller passed as ``client``.
        call: The call, for the message (``"create_stream_completion"``).
        hint: Said after the error, for a mistake typical of this call.

    Raises:
        TypeError: It is something else (a base URL string, say): naming the argument.
    """
    if value is None or isinstance(value, ChatClient):
        return
    shown = repr(value)
    shown = shown[:80] + "..." if len(shown) > 80 else shown
    advice = hint or (
        f" For a base URL write {call}(..., client=ChatClient(base_url=...))."
        if isinstance(value, str) else ""
    )
    raise TypeError(
        f"{call}: client must be a rxchat.ChatClient or None, not "
        f"{type(value).__name__} {shown}.{advice}"
    )
