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
from urllib.parse import urlsplit

from .._client import DEFAULT_BASE_URL, ChatClient, _is_loopback
from .._offline.model import offline_reply
from .._offline.server import FakeServer
from .._routing import HedgedCompletion
from ..errors import BadRequestError, ConfigurationError
from ._args import OFFLINE_PACE_S
from ._listing import list_models
from ._routes import load_routes, route_secrets

__all__ = ["KEY_VARIABLES", "OFFLINE_MODEL", "Backend", "api_keys", "connect", "secrets"]

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
    """A ready client, and whether it talks to the in-process offline model.

    With ``--routes``, ``complete`` races the routes and ``client`` is the first one's.
    """

    client: ChatClient
    offline: bool
    complete: HedgedCompletion | None = None


def api_keys(env: Mapping[str, str]) -> tuple[str, ...]:
    """The API keys set in ``env`` (to use one, and to redact them all)."""
    return tuple(env[name] for name in KEY_VARIABLES if env.get(name))


def secrets(args: argparse.Namespace, env: Mapping[str, str]) -> tuple[str, ...]:
    """Every key that must never be printed: ``--api-key`` and the environment's."""
    given = getattr(args, "api_key", None)
    keys = (given, *api_keys(env)) if given else api_keys(env)
    return keys + route_secrets(getattr(args, "routes", None), env)


def key_source(args: argparse.Namespace, env: Mapping[str, str]) -> str | None:
    """Where the key the command sends comes from: ``--api-key`` or ``$NAME``; None."""
    if getattr(args, "api_key", None):
        return "--api-key"
    return next((f"${name}" for name in KEY_VARIABLES if env.get(name)), None)


def offline_notice(args: argparse.Namespace, env: Mapping[str, str]) -> str | None:
    """The one-line notice if the offline model is to be used, else None."""
    if args.offline:
        return FORCED_NOTICE
    if secrets(args, env) or args.base_url or env.get("RXCHAT_BASE_URL"):
        return None
    if getattr(args, "routes", None):
        return None
    return NO_KEY_NOTICE


def _checked_base_url(args: argparse.Namespace, env: Mapping[str, str]) -> str | None:
    """The base URL to use; plain http off this machine needs ``--insecure-http``."""
    base_url = args.base_url or env.get("RXCHAT_BASE_URL")
    parts = urlsplit(base_url or "")
    remote = parts.hostname is not None and not _is_loopback(parts.hostname)
    if parts.scheme == "http" and remote and not args.insecure_http:
        raise ConfigurationError(
            f"Refusing to send the API key over plain http to {parts.hostname}: use "
            "an https:// --base-url, or add --insecure-http if the network is trusted "
            "(plain http to this machine, e.g. http://127.0.0.1, needs no flag)."
        )
    return base_url


def _first_listed_model(client: ChatClient) -> str:
    """The first model the server lists, for a base URL that is not the default one."""
    try:
        models = list_models(client)
    except BadRequestError as exc:  # no /models here; other failures keep their family
        raise ConfigurationError(
            f"No --model given, and the server's model list could not be read ({exc}) "
            "Name one with --model or RXCHAT_MODEL."
        ) from None
    if not models:
        raise ConfigurationError(
            f"No --model given, and {client.base_url}/models lists none; name one with "
            "--model or RXCHAT_MODEL."
        )
    return models[0]


@contextmanager
def connect(args: argparse.Namespace, env: Mapping[str, str]) -> Iterator[Backend]:
    """A client for the configured provider, or for an in-process offline server.

    With a base URL other than the default provider's and no model named, the model
    is the first one the server lists at ``/models``.

    Args:
        args: The parsed options (``base_url``, ``api_key``, ``model``, ``offline``,
            ``insecure_http``).
        env: The environment variables.

    Yields:
        The backend; the offline server, if any, stops when the block ends.

    Raises:
        ConfigurationError: The base URL cannot be used, or no model was named and the
            server lists none.
    """
    if getattr(args, "routes", None) and not args.offline:
        routes = load_routes(args.routes, env, insecure_http=bool(args.insecure_http))
        try:
            yield Backend(routes.clients[0], offline=False, complete=routes.complete)
        finally:
            routes.close()
        return
    if offline_notice(args, env) is None:
        keys = secrets(args, env)
        base_url = _checked_base_url(args, env)
        model = args.model or env.get("RXCHAT_MODEL")
        with ChatClient(base_url, keys[0] if keys else None, model=model,
                        allow_insecure_http=bool(args.insecure_http)) as client:
            client._key_source = key_source(args, env)  # named if the server refuses it
            if model is None and client.base_url != DEFAULT_BASE_URL:
                client.model = _first_listed_model(client)
            yield Backend(client, offline=False)
        return
    responder = functools.partial(offline_reply, delay=OFFLINE_PACE_S)
    with FakeServer(responder) as server, ChatClient(
        server.base_url, "rxchat-offline", model=args.model or OFFLINE_MODEL, max_retries=0
    ) as client:
        yield Backend(client, offline=True)
