"""ChatSession: a conversation that keeps its context, as an RxPY Subject.

The big picture::

    on_next(text) / send(text) / retry()          asks, queued in order
        │
        ▼  one turn at a time: TurnStarted, then complete(params) is subscribed
    turn events ──scan(apply_event, seed)──▶ ChatState ──▶ subscribers (BehaviorSubject)
        ▲                                                  and send()'s ReplaySubject
        └── DeltaReceived / TurnCompleted / TurnFailed from the turn's stream,
            TurnCancelled / TurnUndone / SessionReset / Restored from the methods

The history lives only in the scan (see :mod:`rxchat._history` for the pure reducer);
the turn runner (:mod:`rxchat._turns`) holds only scheduling beside it: the queue of
asked turns, the subscription of the turn in flight, and its ReplaySubject. Each
request is built from the state the turn started in (system prompt + history + new
message, trimmed to ``context_window``), so a turn asked while another streams sees that reply.

Events are applied one at a time under a lock, so states are emitted in order and
never concurrently, from whichever thread delivered the event (the SSE reader's, or
the caller's). An event raised while one is being applied on the same thread (a
subscriber calling ``send``, a stream that emits synchronously) is queued and applied
right after. With a ``TestScheduler`` nothing here starts a thread or blocks.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from operator import attrgetter
from typing import Any, cast

from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.subject import ReplaySubject

from ._client import ChatClient
from ._context import TokenCounter, estimate_tokens, request_messages
from ._history import (
    ChatState,
    Restored,
    SessionReset,
    SystemChanged,
    TurnUndone,
    last_turn_start,
)
from ._models import ChatCompletionParams, ChatMessage, Message
from ._persist import SessionFile, read_session, write_session
from ._stream import create_stream_completion
from ._turns import Turn, TurnRunner
from .errors import SessionError

__all__ = ["Ask", "ChatSession", "Completion"]

Completion = Callable[..., Observable[Message]]
"""Called as ``complete(params, client=..., scheduler=...)``, like
:func:`~rxchat.create_stream_completion`; returns a cold Observable of deltas."""

Ask = str | ChatMessage | Message
"""What asks a turn: the user's text, or a whole message (e.g. a tool result)."""


class ChatSession(Observable[ChatState], abc.ObserverBase[Ask]):
    """A multi-turn conversation; an RxPY Subject of asks in and ``ChatState`` out.

    Args:
        client: Where requests go (passed to ``complete``); None for the default.
        model: Model id for every request (overrides ``params["model"]``).
        system: System prompt, the first message of the history.
        params: Other request fields (``temperature``, ``tools``, ...), sent each turn.
        context_window: Token budget of a request; the oldest turns are left out of
            requests that would exceed it. None sends the whole history.
        count_tokens: Counts one wire message; default :func:`estimate_tokens`
            (about 4 characters per token plus 4 per message).
        scheduler: Scheduler for the turns' streams (a ``TestScheduler`` in tests).
        complete: Streams one completion; :func:`create_stream_completion` by default.
    """

    def __init__(
        self,
        client: ChatClient | None = None,
        *,
        model: str | None = None,
        system: str | None = None,
        params: Mapping[str, Any] | None = None,
        context_window: int | None = None,
        count_tokens: TokenCounter | None = None,
        scheduler: abc.SchedulerBase | None = None,
        complete: Completion = create_stream_completion,
    ) -> None:
        super().__init__()
        self.client, self.model, self.context_window = client, model, context_window
        self.params: dict[str, Any] = dict(params or {})
        self._count_tokens = count_tokens or estimate_tokens
        self._scheduler, self._complete = scheduler, complete
        seed = ChatState(messages=(Message(role="system", content=system),) if system else ())
        self._runner = TurnRunner(seed, self._start_stream, scheduler)

    # -- the Observable side -------------------------------------------------------

    def _subscribe_core(
        self, observer: abc.ObserverBase[ChatState], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        return self._runner.states.subscribe(observer, scheduler=scheduler)

    @property
    def state(self) -> ChatState:
        """The current state."""
        return self._runner.states.value

    @property
    def messages(self) -> tuple[Message, ...]:
        """The committed history, system prompt first."""
        return self._runner.states.value.messages

    @property
    def history(self) -> Observable[tuple[Message, ...]]:
        """The committed history now and after every change to it."""
        return self._runner.states.pipe(
            ops.map(attrgetter("messages")), ops.distinct_until_changed(comparer=_equal)
        )

    # -- the Observer side and the turn methods -------------------------------------

    def on_next(self, value: Ask) -> None:
        """Ask a turn: ``value`` is the user's text, or a ``ChatMessage`` (e.g. a tool result).

        Raises:
            SessionError: The session is closed.
        """
        self._ask(Turn(_as_message(value)))

    def send(self, text: Ask) -> Observable[Message]:
        """Ask a turn now and return its deltas.

        The turn runs whether or not anyone subscribes; every subscriber gets all the
        deltas from the first. A cancelled turn ends with a ``finish_reason="cancelled"``
        delta; a failed one with the error.

        Raises:
            SessionError: The session is closed.
        """
        return self._ask(Turn(_as_message(text), deltas=ReplaySubject()))

    def retry(self) -> Observable[Message]:  # type: ignore[override]
        """Ask the failed turn again; after a successful turn, regenerate its reply.

        A regenerated reply replaces the last one when it completes (if it fails,
        the old reply stays). This shadows Rx's ``retry`` operator method, which
        stays available as ``session.pipe(ops.retry(n))``.

        Returns:
            The deltas of the new attempt, as from :meth:`send`.

        Raises:
            SessionError: A turn is in progress, or there is nothing to retry.
        """
        with self._runner.lock:
            state = self._idle_state("retry()")
            if state.failed is not None:
                return self._ask(Turn(state.failed, deltas=ReplaySubject()))
            start = last_turn_start(state.messages)
            if start == len(state.messages) or state.messages[start].role != "user":
                raise SessionError("Nothing to retry: no turn has been asked yet.")
            return self._ask(Turn(state.messages[start], True, ReplaySubject()))

    def cancel(self) -> bool:
        """Abort the turn in flight (its HTTP stream is closed) and keep its partial reply.

        The reply so far is committed with ``finish_reason="cancelled"``; turns asked
        after it then run.

        Returns:
            Whether a turn was cancelled.
        """
        return self._runner.cancel()

    def undo(self) -> None:
        """Remove the last turn (from its user message to the end) from the history.

        Raises:
            SessionError: A turn is in progress, or there is no turn to remove.
        """
        with self._runner.lock:
            state = self._idle_state("undo()")
            if last_turn_start(state.messages) == len(state.messages):
                raise SessionError("Nothing to undo: the history has no turns.")
            self._runner.run(TurnUndone())

    def reset(self) -> None:
        """Clear the history, keeping the system prompt; turns in progress are dropped.

        The delta streams of dropped turns end with a ``SessionError``.
        """
        with self._runner.lock:
            self._runner.discard(SessionError("The turn was discarded by reset()."))
            self._runner.run(SessionReset())

    def set_system(self, text: str | None) -> None:
        """Replace the system prompt (``None`` removes it), keeping the history.

        The next turn is sent with the new prompt; a turn in flight keeps the one it
        was sent with.
        """
        self._runner.run(SystemChanged(text))

    def on_error(self, error: Exception) -> None:
        """The input failed: drop the turns in progress and pass ``error`` on."""
        self._runner.fail(error)

    def on_completed(self) -> None:
        """No more asks: complete once the turns already asked are done."""
        self._runner.complete_when_idle()

    def close(self) -> None:
        """Cancel the turn in flight (keeping its partial reply), drop the rest, complete."""
        self._runner.close()

    # -- persistence ------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the history, model, params and context window to ``path`` atomically.

        Raises:
            SessionFileError: It could not be written; an existing file is unchanged.
        """
        contents = SessionFile(self.messages, self.model, self.params, self.context_window)
        write_session(path, contents)

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        client: ChatClient | None = None,
        **options: Any,
    ) -> ChatSession:
        """A session restored from a file written by :meth:`save`.

        Args:
            path: The file.
            client: Where the restored session's requests go.
            **options: Other ``ChatSession`` arguments; ``model``, ``params`` and
                ``context_window`` default to the saved ones.

        Raises:
            SessionFileError: The file is missing, corrupt, or of an unknown version.
        """
        saved = read_session(path)
        options.setdefault("model", saved.model)
        options.setdefault("params", saved.params)
        options.setdefault("context_window", saved.context_window)
        session = cls(client, **options)
        session._runner.run(Restored(saved.messages))
        return session

    # -- helpers ------------------------------------------------------------------------

    def _idle_state(self, what: str) -> ChatState:
        if self._runner.busy:
            raise SessionError(f"A turn is in progress; wait for it or cancel() before {what}.")
        return self._runner.states.value

    def _ask(self, turn: Turn) -> Observable[Message]:
        self._runner.ask(turn)
        return cast(Observable[Message], turn.deltas)

    def _start_stream(self, state: ChatState) -> Observable[Message]:
        """Call ``complete`` for the turn that just started in ``state``."""
        assert state.pending is not None
        body = dict(self.params)
        if self.model is not None:
            body["model"] = self.model
        body["messages"] = request_messages(
            state.context, state.pending,
            context_window=self.context_window, count_tokens=self._count_tokens,
        )
        params = cast(ChatCompletionParams, body)
        return self._complete(params, client=self.client, scheduler=self._scheduler)


def _as_message(value: Ask) -> Message:
    if isinstance(value, Message):
        return value
    if isinstance(value, ChatMessage):
        return Message(
            role=value.role, content=value.content, name=value.name,
            tool_calls=value.tool_calls, tool_call_id=value.tool_call_id,
        )
    if isinstance(value, str):
        return Message(role="user", content=value)
    raise TypeError(f"ChatSession asks are str or ChatMessage, not {type(value).__name__}")


def _equal(left: object, right: object) -> bool:
    return left is right or left == right

