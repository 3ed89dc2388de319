"""Which server the command line talks to: a configured provider, or the offline model.

The offline model is used when ``--offline`` is given, or when neither an API key nor
a base URL is configured. A base URL given without a key is used as given: a loopback
server (a local vLLM or Ollama) needs no key, and any other one fails with a clear
"no API key" error rather than silently answering from the offline model. It is
`rxchat.testing.offline_reply` served by a `FakeServer`
started in-process on 127.0.0.1, so HTTP, SSE, the reader thread and the session all run
for real. It is not a language model, and the notice printed says so.
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from .._client import ChatClient
from ..testing import FakeServer, offline_reply
from ._args import OFFLINE_PACE_S

__all__ = ["KEY_VARIABLES", "OFFLINE_MODEL", "Backend", "api_keys", "connect"]

KEY_VARIABLES = ("RXCHAT_API_KEY", "SILICONFLOW_API_KEY")
OFFLINE_MODEL = "rxchat-offline"
OFFLINE_WHAT = (
    "the built-in offline model, which is not a language model: it repeats and "
    "recalls what you tell it"
)
NO_KEY_NOTICE = (
    "rxchat: no API key set (export SILICONFLOW_API_KEY=..., or RXCHAT_API_KEY and "
    f"RXCHAT_BASE_URL for another provider), so this is {OFFLINE_WHAT}."
)
FORCED_NOTICE = f"rxchat: --offline: talking to {OFFLINE_WHAT}."


@dataclass(frozen=True)
class Backend:
    """A ready client, and whether it talks to the in-process offline model."""

    client: ChatClient
    offline: bool


def api_keys(env: Mapping[str, str]) -> tuple[str, ...]:
    """The API keys set in ``env`` (to use one, and to redact them all)."""
    return tuple(env[name] for name in KEY_VARIABLES if env.get(name))


def offline_notice(args: argparse.Namespace, env: Mapping[str, str]) -> str | None:
    """The one-line notice if the offline model is to be used, else None."""
    if args.offline:
        return FORCED_NOTICE
    if api_keys(env) or args.base_url or env.get("RXCHAT_BASE_URL"):
        return None
    return NO_KEY_NOTICE


@contextmanager
def connect(args: argparse.Namespace, env: Mapping[str, str]) -> Iterator[Backend]:
    """A client for the configured provider, or for an in-process offline server.

    Args:
        args: The parsed options (``base_url``, ``model``, ``offline``).
        env: The environment variables.

    Yields:
        The backend; the offline server, if any, stops when the block ends.

    Raises:
        ConfigurationError: The base URL cannot be used.
    """
    if offline_notice(args, env) is None:
        keys = api_keys(env)
        base_url = args.base_url or env.get("RXCHAT_BASE_URL")
        model = args.model or env.get("RXCHAT_MODEL")
        with ChatClient(base_url, keys[0] if keys else None, model=model) as client:
            yield Backend(client, offline=False)
        return
    responder = functools.partial(offline_reply, delay=OFFLINE_PACE_S)
    with FakeServer(responder) as server, ChatClient(
        server.base_url, "rxchat-offline", model=args.model or OFFLINE_MODEL, max_retries=0
    ) as client:
        yield Backend(client, offline=True)
