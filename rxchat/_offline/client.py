"""A keyless way to try the Python API: a client for the offline model, served in-process.

`offline_client()` starts the built-in offline model (the one `rxchat chat` falls back
to without a key, and `rxchat serve` runs) on a free port of 127.0.0.1 and yields a
`ChatClient` for it; leaving the `with` block closes the client and stops the server.
Nothing leaves the machine, and no key or sign-up is needed. The offline model is not a
language model: it repeats what it is told and recalls facts stated earlier, which is
enough to see streaming, sessions and errors work for real (HTTP, SSE, the reader
thread).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager

from .._client import ChatClient

__all__ = ["OFFLINE_MODEL", "offline_client"]

OFFLINE_MODEL = "rxchat-offline"
"""The model name the offline model answers to."""


@contextmanager
def offline_client(*, delay: float = 0.0) -> Iterator[ChatClient]:
    """A `ChatClient` for the built-in offline model, served on 127.0.0.1 while in use.

    Example:
        ```python
        from rxchat import create_stream_completion, offline_client, operators as rxops

        with offline_client() as client:
            params = {"messages": [{"role": "user", "content": "hi"}]}
            reply = create_stream_completion(params, client=client)
            print(reply.pipe(rxops.final_message()).run().content)
        ```

    Args:
        delay: Seconds between streamed words (0 streams as fast as possible; the
            command line uses 0.03 to look like a model typing).

    Yields:
        A client whose requests go to the offline model; it needs no API key.
    """
    from .model import offline_reply
    from .server import FakeServer

    responder = functools.partial(offline_reply, delay=max(0.0, delay))
    with FakeServer(responder) as server, ChatClient(
        server.base_url, model=OFFLINE_MODEL, max_retries=0
    ) as client:
        yield client
