"""``GET /models``: the model ids an OpenAI-compatible server offers.

Used by the command line to pick a model when the user names none for a server that
is not the default provider (a local vLLM, Ollama or llama.cpp serves its own ids, and
the default provider's model id would be a 404 there).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from .._client import ChatClient
from .._http import transport as _transport
from .._http.neterrors import redirect_target
from .._wire.json import loads as json_loads
from ..errors import APIStatusError, AuthenticationError, BadRequestError

if TYPE_CHECKING:
    import requests
from .._http.status import key_advice

__all__ = ["list_models"]

LIST_TIMEOUT = (5.0, 15.0)
"""Connect and read seconds for the model list: it is small, and asked before chatting."""


def list_models(client: ChatClient) -> list[str]:
    """The model ids ``client``'s server lists at ``{base_url}/models``, in its order.

    Args:
        client: Where to ask (its key is sent, as for a completion).

    Returns:
        The ids (possibly empty).

    Raises:
        AuthenticationError: No key for a non-loopback server, or the server refused it.
        APIConnectionError: The server could not be reached.
        BadRequestError: The answer was an error status or not a model list.
    """
    url = f"{client.base_url}/models"
    headers = {**client.build_headers(), "Accept": "application/json"}
    response = _get(client, url, headers)
    with contextlib.closing(response):
        status = response.status_code
        try:
            body: Any = json_loads(response.text) if response.ok else None
        except ValueError:  # not JSON, or nested too deeply
            body = None
    if status in (401, 403):
        raise AuthenticationError(status, "", f"The server at {url} answered HTTP {status}. "
                                  f"{key_advice(client._key_source)}")
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        raise BadRequestError(status, "", f"{url} did not answer with a model list "
                              f"(HTTP {status}).")
    return [str(m["id"]) for m in data if isinstance(m, dict) and m.get("id")]


def _get(client: ChatClient, url: str, headers: dict[str, str]) -> requests.Response:
    """GET ``url``, following redirects only within its origin (as completions do), so
    the key is never sent to another host.

    Raises:
        APIConnectionError: The server could not be reached.
        APIStatusError: A redirect to another origin, or too many redirects.
    """
    target = url
    for _hop in range(_transport.MAX_REDIRECTS + 1):
        try:  # not streamed: the body has been read when get() returns
            response = client.session.get(
                target, headers=headers, timeout=LIST_TIMEOUT, allow_redirects=False
            )
        except Exception as exc:
            raise client.redact_error(
                _transport.translate(exc, target, reading=False)
            ) from None
        location = response.headers.get("location")
        if not response.is_redirect or not location:
            return response
        response.close()
        target = redirect_target(response.status_code, target, location, "/models")
    raise APIStatusError(
        response.status_code, "", f"{url} redirected more than "
        f"{_transport.MAX_REDIRECTS} times; set base_url to the final address.",
    )
