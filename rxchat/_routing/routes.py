"""Routes: where one attempt of a hedged request goes.

A route is given as a `ChatClient` (its base URL, key and retries; the caller's model),
as ``(client, model)`` (providers that name one model differently), or as a
completion function called like `create_stream_completion` (scripted routes for
marble tests, or any other source of deltas). `Route.of` checks and normalises each.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from reactivex import Observable, abc

from .._client import ChatClient
from .._models import Message
from .._stream import create_stream_completion

__all__ = ["Completion", "Route"]

Completion = Callable[..., Observable[Message]]
"""Called as ``complete(params, client=..., scheduler=...)``, like
`create_stream_completion`."""


@dataclass(frozen=True)
class Route:
    """One route: a client (with an optional model), or a completion function.

    Attributes:
        client: Where the attempt is sent, or None for a completion route.
        model: The model this route asks for; None for the caller's.
        complete: The completion function of a completion route, else None.
        position: The route's place in the order given (from 0).
    """

    client: ChatClient | None
    model: str | None
    complete: Completion | None
    position: int

    @classmethod
    def of(cls, value: object, position: int) -> Route:
        """Normalise one argument of `hedge`.

        Args:
            value: A `ChatClient`, ``(client, model)`` or a completion function.
            position: Its place among the routes.

        Returns:
            The route.

        Raises:
            TypeError: ``value`` is none of those (the message says which route).
        """
        if isinstance(value, ChatClient):
            return cls(value, None, None, position)
        if isinstance(value, tuple):
            if (
                len(value) == 2 and isinstance(value[0], ChatClient)
                and isinstance(value[1], str) and value[1]
            ):
                return cls(value[0], value[1], None, position)
        elif callable(value):
            return cls(None, None, value, position)
        raise TypeError(
            f"hedge(): route {position + 1} is {type(value).__name__}, not a ChatClient, "
            "a (ChatClient, model name) pair, or a completion function called like "
            "create_stream_completion(params, client=..., scheduler=...)."
        )

    def name(self, params: Mapping[str, Any]) -> str:
        """What the route is called in messages, logs and errors.

        Args:
            params: The caller's request (its ``model`` is used by a route without one).

        Returns:
            ``"<model> at <base URL>"`` for a client route; for a completion route
            ``"route N (<function name>)"``.
        """
        if self.client is None:
            what = getattr(self.complete, "__name__", None) or type(self.complete).__name__
            return f"route {self.position + 1} ({what})"
        model = self.model or params.get("model") or self.client.model
        return f"{model} at {self.client.base_url}"

    def open(
        self,
        params: Mapping[str, Any],
        client: ChatClient | None,
        scheduler: abc.SchedulerBase | None,
    ) -> Observable[Message]:
        """The cold Observable of one attempt on this route.

        Args:
            params: The caller's request; a route's model replaces its ``model``.
            client: The caller's client (used by a completion route only).
            scheduler: The caller's scheduler, passed on.

        Returns:
            The attempt's deltas.
        """
        if self.complete is not None:
            return self.complete(params, client=client, scheduler=scheduler)
        body = {**params, "model": self.model} if self.model else params
        return create_stream_completion(body, client=self.client, scheduler=scheduler)
