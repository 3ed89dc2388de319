"""``--routes FILE``: several providers of one model, raced by `rxchat.hedge`.

The file is TOML: an optional ``after`` (``"p95"``, or seconds) and ``max_in_flight``,
and one ``[[route]]`` table per provider, in the order they are tried:

```toml
after = "p95"

[[route]]
base_url = "https://api.deepseek.com/v1"
model = "deepseek-chat"
api_key_env = "DEEPSEEK_API_KEY"

[[route]]
base_url = "https://api.siliconflow.cn/v1"
model = "deepseek-ai/DeepSeek-V3"
api_key_env = "SILICONFLOW_API_KEY"
```

The keys stay in the environment; the file only names the variables, so it can be
shared and kept in version control. Only a server on this machine may go without
``api_key_env``; no route ever gets ``RXCHAT_API_KEY`` or another route's key. Route
clients do not retry (``max_retries = 0`` unless a route sets ``max_retries``): a
failing provider hands over to the next at once.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .._client import ChatClient, _is_loopback
from .._routing import HedgedCompletion, hedge
from ..errors import ConfigurationError

__all__ = ["NO_KEY", "Routes", "load_routes", "route_secrets"]

NO_KEY = "no-key"
"""The key sent to a loopback route without ``api_key_env`` (local servers ignore it)."""


@dataclass(frozen=True)
class Routes:
    """The clients of a routes file and the hedge that races them."""

    clients: tuple[ChatClient, ...]
    complete: HedgedCompletion

    def close(self) -> None:
        """Close every route's client."""
        for client in self.clients:
            client.close()


def _read(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as file:
            return tomllib.load(file)
    except OSError as exc:
        raise ConfigurationError(
            f"Cannot read the routes file {path!r} ({exc.strerror or exc}); check --routes."
        ) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"The routes file {path!r} is not valid TOML: {exc}") from exc


def _tables(data: Mapping[str, Any], path: str) -> list[Mapping[str, Any]]:
    tables = data.get("route")
    if not isinstance(tables, list) or not tables or not all(
        isinstance(t, Mapping) for t in tables
    ):
        raise ConfigurationError(
            f"The routes file {path!r} has no [[route]] tables; give one per provider with "
            "base_url, model and api_key_env (see `rxchat chat --help`)."
        )
    return tables


def route_secrets(path: str | None, env: Mapping[str, str]) -> tuple[str, ...]:
    """The keys a routes file names (to keep them out of every message); () if unreadable."""
    if not path:
        return ()
    try:
        tables = _tables(_read(path), path)
    except ConfigurationError:
        return ()
    names = (t.get("api_key_env") for t in tables)
    return tuple(env[n] for n in names if isinstance(n, str) and env.get(n))


def load_routes(path: str, env: Mapping[str, str], *, insecure_http: bool = False) -> Routes:
    """Build the route clients of a routes file, and the hedge that races them.

    Args:
        path: The TOML file.
        env: The environment variables (the keys are read from it).
        insecure_http: Allow plain http to another machine (``--insecure-http``).

    Returns:
        The clients, in file order, and their hedge.

    Raises:
        ConfigurationError: The file cannot be read, a route lacks a ``base_url`` or
            ``model``, names a variable that is not set, or ``after`` /
            ``max_in_flight`` are unusable. The message says which route and what to do.
    """
    data = _read(path)
    clients: list[ChatClient] = []
    try:
        for number, table in enumerate(_tables(data, path), 1):
            clients.append(_client(table, number, path, env, insecure_http))
        after = data.get("after", "p95")
        max_in_flight = data.get("max_in_flight", 2)
        complete = hedge(*((c, c.model) for c in clients), after=after,
                         max_in_flight=max_in_flight)
    except BaseException:
        for client in clients:
            client.close()
        raise
    return Routes(tuple(clients), complete)


def _client(
    table: Mapping[str, Any], number: int, path: str, env: Mapping[str, str],
    insecure_http: bool,
) -> ChatClient:
    where = f"route {number} of {path!r}"
    base_url, model = table.get("base_url"), table.get("model")
    if not isinstance(base_url, str) or not base_url or not isinstance(model, str) or not model:
        raise ConfigurationError(f"{where} needs a base_url and a model (both strings).")
    key_name = table.get("api_key_env")
    if key_name is None:
        if not _is_loopback(urlsplit(base_url).hostname or ""):
            raise ConfigurationError(
                f"{where} needs api_key_env: the name of the environment variable holding "
                "its key (only a server on this machine may go without one)."
            )
        key = NO_KEY  # never another provider's key from RXCHAT_API_KEY & co.
    elif isinstance(key_name, str) and env.get(key_name):
        key = env[key_name]
    else:
        raise ConfigurationError(
            f"{where} takes its key from ${key_name}, which is not set; export it first."
        )
    retries = table.get("max_retries", 0)
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ConfigurationError(f"{where}: max_retries must be a whole number >= 0.")
    return ChatClient(base_url, key, model=model, max_retries=retries,
                      allow_insecure_http=insecure_http)

