"""ChatSession: a conversation that keeps its context, as an RxPY Subject built as an actor.

The public face of the session. Every method turns into a command posted to the
session's actor (`rxchat._session.actor`), which folds it with the pure `rxchat._session.turns.step`
in a `scan` on one serial scheduler and performs what follows; the only thing a
method does on the calling thread is close a turn's socket (`cancel`, disposing an
`ask()`), so that happens at once however busy the subscribers are.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from operator import attrgetter
from typing import Any

import reactivex
from reactivex import Observable, Observer, abc
from reactivex import operators as ops
from reactivex.disposable import Disposable
from reactivex.scheduler import CurrentThreadScheduler, ImmediateScheduler, VirtualTimeScheduler

from .._client import ChatClient, require_client
from .._concurrency.loop import deliver_on_loop, loop_of, on_subscriber_loop
from .._models import ChatCompletionParams, Message
from .._stream import create_stream_completion
from .._structured.schema import as_structured
from .._tools.run import Approve, ToolRunner
from .._tools.tools import Tool, ToolFunction, tool_table
from .._wire.text import valid_message
from ..errors import ConfigurationError, SessionError, StoreError
from ..stores import ConversationStore, attach, load_history
from .actor import Replay, SessionActor
from .commands import (
    Ask,
    Asked,
    AskValue,
    Cancel,
    Closed,
    Command,
    Disposed,
    Edit,
    InputCompleted,
    InputFailed,
    Reset,
    Unwatch,
    Watch,
    Withdrawn,
    as_message,
)
from .context import TokenCounter, estimate_tokens, request_params
from .events import SystemChanged, TurnUndone
from .persist import SessionFile, read_session, write_session
from .state import ChatState, last_turn_start, system_prefix
from .turns import Actor, ToolLoop

__all__ = ["AskValue", "ChatSession", "Completion"]

log = logging.getLogger("rxchat")

Completion = Callable[..., Observable[Message]]
"""Called as `complete(params, client=..., scheduler=...)`, like
`rxchat.create_stream_completion`; returns a cold Observable of deltas."""

_QUIET: abc.ObserverBase[Any] = Observer(lambda _v: None, lambda _e: None, lambda: None)


class ChatSession(Observable[ChatState], abc.SubjectBase[Any], abc.DisposableBase):
    """A multi-turn conversation; an RxPY Subject of asks in and `ChatState` out.

    Args:
        client: Where requests go (passed to `complete`); None for the default.
        model: Model id for every request (overrides `params["model"]`).
        system: System prompt, the first message of the history.
        params: Other request fields (`temperature`, `tool_choice`, ...), sent each turn.
        tools: Functions the model may call: plain, `async def`, returning an
            Observable (its last value is the result), or `Tool`s. A reply that calls
            them is committed, its calls run, their results are committed in call
            order and the model is asked again, until a reply calls none.
        max_steps: Requests one turn may make; a turn still calling tools after that
            fails with `StepLimitError` (what it committed stays).
        approve: Asked with each `ToolCall` before it runs (may return a bool, an
            awaitable or an Observable of bool); a refusal becomes a tool message
            saying the user declined.
        max_tool_concurrency: Tool calls of one reply running at once.
        history: The conversation so far (after the system prompt), to continue it.
        store: Where every commit is written as it commits (a `ConversationStore`,
            such as `rxchat.stores.SQLiteStore()`); a process killed mid-turn loses
            nothing committed.
        conversation_id: With `store`, the stored conversation to resume (its history
            replaces `history`; `system`, if given, replaces its system prompt);
            None starts a new one at the first commit (see `conversation_id`).
        context_window: Token budget of a request; the oldest turns are left out of
            requests that would exceed it. None sends the whole history.
        count_tokens: Counts one wire message; default `estimate_tokens`
            (about 4 characters per token plus 4 per message).
        scheduler: The serial scheduler everything runs on: an `EventLoopScheduler`,
            an asyncio scheduler, or a `TestScheduler` (then the turns' streams are
            subscribed in virtual time too). By default a thread of the session's own
            that exists only while the session has work.
        complete: Streams one completion; `create_stream_completion` by default.

    `undo()`, `reset()` and `set_system()` return once applied when the session runs
    on its own thread (and are queued behind the commands before them otherwise).

    Raises:
        ConfigurationError: `scheduler` is not serial (the immediate or current-thread
            scheduler), two tools share a name, or a tool's type hints have no JSON
            Schema.
    """

    def __init__(
        self,
        client: ChatClient | None = None,
        *,
        model: str | None = None,
        system: str | None = None,
        params: Mapping[str, Any] | None = None,
        tools: Sequence[Tool | ToolFunction] | None = None,
        max_steps: int = 8,
        approve: Approve | None = None,
        max_tool_concurrency: int = 4,
        history: Sequence[AskValue] = (),
        store: ConversationStore | None = None,
        conversation_id: str | None = None,
        context_window: int | None = None,
        count_tokens: TokenCounter | None = None,
        scheduler: abc.SchedulerBase | None = None,
        complete: Completion = create_stream_completion,
    ) -> None:
        super().__init__()
        require_client(client, "ChatSession", _SYSTEM_HINT if isinstance(client, str) else "")
        _require_text(model=model, system=system)
        if params is not None and not isinstance(params, Mapping):
            raise TypeError(f"ChatSession: params must be a dict of request fields, not "
                            f"{type(params).__name__}.")
        if isinstance(scheduler, (ImmediateScheduler, CurrentThreadScheduler)):
            raise ConfigurationError(
                f"ChatSession needs a serial scheduler, not {type(scheduler).__name__}: "
                "pass an EventLoopScheduler, an asyncio scheduler or a TestScheduler, "
                "or none for the session's own thread."
            )
        self.client, self.model, self.context_window = client, model, context_window
        self.params: dict[str, Any] = dict(params or {})
        self._count_tokens = count_tokens or estimate_tokens
        self._complete = complete
        # a blocking read never runs on the session's scheduler, unless time is virtual
        virtual = isinstance(scheduler, VirtualTimeScheduler)
        self._stream_scheduler: abc.SchedulerBase | None = scheduler if virtual else None
        self.tools = tool_table(tools or ())
        runner = ToolRunner(self.tools, approve, self._stream_scheduler)
        loop = ToolLoop(max(1, max_steps), max(1, max_tool_concurrency)) if tools else None
        head = (Message(role="system", content=system),) if system else ()
        messages = tuple(map(valid_message, (*head, *map(as_message, history))))
        stored: tuple[Message, ...] = ()
        if store is not None and conversation_id is not None:
            stored = load_history(store, conversation_id)
            messages = _resumed(stored, system)
        seed = Actor(ChatState(messages=messages), loop=loop)
        self._actor = SessionActor(
            seed, scheduler, self._open_stream, self._stream_scheduler,
            runner.start,
        )
        self._stopped = False
        self._writer = None if store is None else attach(
            self.history, store, conversation_id, model=self._model_name, base=stored
        )

    # -- the Observable side -------------------------------------------------------

    def _subscribe_core(
        self, observer: abc.ObserverBase[ChatState], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        # `await session.pipe(...)` subscribes with an asyncio scheduler: the states are
        # handed to that loop's thread (its future must be resolved there).
        def start(target: abc.ObserverBase[ChatState]) -> abc.DisposableBase:
            self._actor.post(Watch(target))
            return Disposable(lambda: self._actor.post(Unwatch(target)))

        return deliver_on_loop(observer, loop_of(scheduler), start)

    @property
    def state(self) -> ChatState:
        """The latest state (as the last subscriber call saw it)."""
        return self._actor.value.state

    @property
    def conversation_id(self) -> str | None:
        """The stored conversation this session writes to (None without a `store`, or
        before its first committed message)."""
        return None if self._writer is None else self._writer.conversation_id

    @property
    def store_error(self) -> StoreError | None:
        """Why the last commit is not in the `store` (None when it is, or without one).

        A `StoreConflict` says another writer (a second window, another worker)
        changed the stored conversation since this session resumed it: nothing of
        theirs was overwritten, and this session's commits are not stored until it is
        saved as a new conversation. Each failed save is also logged as a warning.
        """
        return None if self._writer is None else self._writer.error

    @property
    def messages(self) -> tuple[Message, ...]:
        """The committed history, system prompt first."""
        return self._actor.value.state.messages

    @property
    def history(self) -> Observable[tuple[Message, ...]]:
        """The committed history now and after every change to it."""
        return self.pipe(
            ops.map(attrgetter("messages")), ops.distinct_until_changed(comparer=_equal)
        )

    # -- turns ------------------------------------------------------------------------

    def ask(self, text: AskValue, *, response_format: Any = None) -> Observable[Message]:
        """A cold Observable of one turn: each subscription asks `text` as its own turn.

        The subscription gets that turn's deltas and completes when the turn commits,
        or errors with its error (history unchanged). Disposing it before the turn
        starts unqueues it (no request is sent); while it runs, cancels it as
        `cancel()` does. So `ops.retry(n)` asks again after a failure and
        `ops.take(k)` stops the turn after `k` deltas.

        ```text
        ask("hi")   subscribe ──▶ queued ──▶ ─d─d─d─|   (the turn committed)
        ```

        Args:
            text: The user's text, or a whole message.
            response_format: JSON this turn's reply must be: a schema (a pydantic
                model, a dataclass, a `TypedDict`, a JSON Schema dict) or the dict
                `rxchat.response_format` returns; sent with every request of this
                turn only. Read the reply with `rxchat.operators.partial_json` or
                `parsed`.

        Returns:
            A cold Observable of the turn's deltas.

        Raises:
            ConfigurationError: `response_format` has no JSON Schema.
        """
        message = as_message(text)
        turn_params = {} if response_format is None else {
            "response_format": as_structured(response_format).response_format()}
        origin = object()  # the subscriptions of this Observable: a retry continues

        def subscribe(
            observer: abc.ObserverBase[Message], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            given = _Given(observer)  # counted where the subscriber gets them

            def start(target: abc.ObserverBase[Message]) -> abc.DisposableBase:
                ask = Ask(message, target, params=turn_params, origin=origin)
                self._actor.post(Asked(ask))
                return Disposable(lambda: self._withdraw(ask, given.count))

            return deliver_on_loop(given, loop_of(scheduler), start)

        return reactivex.create(subscribe)

    def send(self, text: AskValue) -> Observable[Message]:
        """Ask a turn now (hot) and return its deltas, replayed to every subscriber.

        The turn runs whether or not anyone subscribes. A cancelled turn ends with a
        `finish_reason="cancelled"` delta; a failed one with the error.

        Args:
            text: The user's text, or a whole message.

        Returns:
            The turn's deltas, from the first, for every subscriber.
        """
        return self._hot(as_message(text))

    def on_next(self, value: AskValue) -> None:
        """Ask a turn (the Observer side); ignored, with a warning logged, once ended.

        Args:
            value: The user's text, a `ChatMessage`, or a wire message dict.
        """
        if self._stopped:
            log.warning("ChatSession.on_next after the session ended: ignored.")
            return
        self._actor.post(Asked(Ask(as_message(value), _QUIET)))

    def regenerate(self) -> Observable[Message]:
        """Ask the failed turn again, or replace the last reply with a new one.

        Queued like any turn. A failed turn is asked again exactly as it was asked,
        so a user message is never committed twice whatever failures came before; a
        regenerated reply replaces the old one only when it completes.

        Returns:
            The new attempt's deltas, as from `send`; a `SessionError` if there is no
            turn to regenerate.
        """
        return self._hot(None)

    def cancel(self) -> bool:
        """Abort the turn in flight, keeping its partial reply (`finish_reason="cancelled"`).

        The turn's socket is closed from the calling thread at once, however busy the
        subscribers are; a cancel that lands before the request is sent sends none.

        Returns:
            Whether a turn was in flight (as far as this thread could see).
        """
        running = self._actor.value.running
        if running is not None:
            running.stream.dispose()
            self._actor.release()
        self._actor.post(Cancel(running))
        return running is not None

    def undo(self) -> None:
        """Remove the last turn (from its user message to the end) from the history.

        Raises:
            SessionError: A turn is in progress, or there is no turn to remove.
        """
        state = self._actor.value.state
        busy = "A turn is in progress; wait for it or cancel() before undo()."
        if state.status in ("streaming", "tools") or state.queued:
            raise SessionError(busy)
        if last_turn_start(state.messages) == len(state.messages):
            raise SessionError("Nothing to undo: the history has no turns.")
        if self._actor.busy:  # counted now, from any thread: also a turn asked a moment ago
            raise SessionError(busy)
        self._actor.post_and_wait(Edit(TurnUndone()))

    def reset(self) -> None:
        """Clear the history, keeping the system prompt; turns in progress are dropped.

        The deltas of dropped turns end with a `SessionError`.
        """
        self._actor.post_and_wait(Reset())

    def set_system(self, text: str | None) -> None:
        """Replace the system prompt (`None` removes it), keeping the history.

        The next turn is sent with the new prompt; a turn in flight keeps its own.
        """
        self._actor.post_and_wait(Edit(SystemChanged(text)))

    def on_error(self, error: Exception) -> None:
        """The input failed: drop the turns in progress and end with `error`.

        Ignored, with a warning logged, once the session ended (after `on_completed()`
        the turns it promised to finish still finish: a terminated observer hears
        nothing more).
        """
        if self._stopped:
            log.warning("ChatSession.on_error after the session ended: ignored.")
            return
        self._stop(InputFailed(error))

    def on_completed(self) -> None:
        """No more asks: complete once the turns already asked are done."""
        if not self._stopped:
            self._stopped = True
            self._actor.post(InputCompleted())

    def close(self) -> None:
        """Cancel the turn in flight (keeping its partial reply), drop the rest, complete."""
        self._stop(Closed())

    def dispose(self) -> None:
        """Cancel the turn in flight, drop the rest, and release every subscriber."""
        self._stop(Disposed())

    # -- persistence ------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the history, model, params and context window to `path` atomically.

        Raises:
            SessionFileError: It could not be written; an existing file is unchanged.
        """
        contents = SessionFile(self.messages, self.model, self.params, self.context_window)
        write_session(path, contents)

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], client: ChatClient | None = None, **options: Any
    ) -> ChatSession:
        """A session restored from a file written by `save`.

        Args:
            path: The file.
            client: Where the restored session's requests go.
            **options: Other `ChatSession` arguments; `model`, `params` and
                `context_window` default to the saved ones.

        Returns:
            The restored session.

        Raises:
            SessionFileError: The file is missing, corrupt, or of an unknown version.
        """
        saved = read_session(path)
        options.setdefault("model", saved.model)
        options.setdefault("params", saved.params)
        options.setdefault("context_window", saved.context_window)
        return cls(client, history=saved.messages, **options)

    # -- helpers ------------------------------------------------------------------------

    def _model_name(self) -> str | None:
        return self.model or (self.client.model if self.client is not None else None)

    def _open_stream(self, state: ChatState) -> Observable[Message]:
        """The stream of the turn that just started in `state`."""
        running = self._actor.value.running  # the ask whose turn this is
        turn_params = running.params if running is not None else {}
        return self._complete(
            self._request(state, turn_params), client=self.client,
            scheduler=self._stream_scheduler,
        )

    def _request(
        self, state: ChatState, turn_params: Mapping[str, Any] | None = None
    ) -> ChatCompletionParams:
        return request_params(
            {**self.params, **(turn_params or {})}, state, model=self.model,
            tools=self.tools.values(),
            context_window=self.context_window, count_tokens=self._count_tokens,
        )

    def _hot(self, message: Message | None) -> Observable[Message]:
        replay = Replay(self._actor.post)
        self._actor.post(Asked(Ask(message, replay)))
        return replay.observable.pipe(on_subscriber_loop())

    def _withdraw(self, ask: Ask, given: int) -> None:
        ask.stream.dispose()  # closes the socket now if the turn runs
        self._actor.release()
        self._actor.post(Withdrawn(ask, given))

    def _stop(self, command: Command) -> None:
        self._stopped = True
        running = self._actor.value.running
        if running is not None:
            running.stream.dispose()
            self._actor.release()
        self._actor.post(command)


class _Given(abc.ObserverBase[Message]):
    """An `ask()` subscriber, and how many deltas it was given."""

    def __init__(self, observer: abc.ObserverBase[Message]) -> None:
        self._observer, self.count = observer, 0

    def on_next(self, value: Message) -> None:
        self.count += 1
        self._observer.on_next(value)

    def on_error(self, error: Exception) -> None:
        self._observer.on_error(error)

    def on_completed(self) -> None:
        self._observer.on_completed()


def _resumed(stored: Sequence[Message], system: str | None) -> tuple[Message, ...]:
    """A stored history to go on with; `system`, if given, replaces its system prompt."""
    stored = tuple(stored)
    if system is None:
        return stored
    return (Message(role="system", content=system), *stored[len(system_prefix(stored)):])


def _equal(left: object, right: object) -> bool:
    return left is right or left == right



_SYSTEM_HINT = (
    " The first argument is the client; for a system prompt write "
    "ChatSession(system=...), e.g. ChatSession(system=\"You are terse.\")."
)


def _require_text(**values: object) -> None:
    """Raise `TypeError` for a keyword argument that should be a string or None."""
    for name, value in values.items():
        if value is not None and not isinstance(value, str):
            raise TypeError(
                f"ChatSession: {name} must be a string or None, not {type(value).__name__}."
            )
