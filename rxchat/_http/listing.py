"""``GET /models``: the model ids an OpenAI-compatible server offers.

Used by the command line to pick a model when the user names none for a server that
is not the default provider (a local vLLM, Ollama or llama.cpp serves its own ids, and
the default provider's model id would be a 404 there).
"""

from __future__ import annotations

import contextlib
from typing import Any

from .._client import ChatClient
from ..errors import AuthenticationError, BadRequestError
from . import transport as _transport
from .status import key_advice

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
    try:  # not streamed: the body has been read when get() returns
        response = client.session.get(url, headers=headers, timeout=LIST_TIMEOUT)
    except Exception as exc:
        raise client.redact_error(_transport.translate(exc, url, reading=False)) from None
    with contextlib.closing(response):
        status = response.status_code
        try:
            body: Any = response.json() if response.ok else None
        except ValueError:  # not JSON
            body = None
    if status in (401, 403):
        raise AuthenticationError(status, "", f"The server at {url} answered HTTP {status}. "
                                  f"{key_advice(client._key_source)}")
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        raise BadRequestError(status, "", f"{url} did not answer with a model list "
                              f"(HTTP {status}).")
    return [str(m["id"]) for m in data if isinstance(m, dict) and m.get("id")]
