"""Write a session's history through to a store as it commits, and read one back.

``ChatSession.history`` emits the committed history now and after every change (a
turn committed, an undo, a reset). ``attach`` subscribes to it and saves each one
with ``ConversationStore.save_messages`` before the next is emitted, on the
session's own thread: when a commit has been emitted, it is in the store, so a process
killed at any moment afterwards loses nothing committed. A store failure does not
stop the conversation; it is reported to ``on_error`` (by default logged).

Each save is a compare-and-set against the history this writer resumed or last
saved (``save_messages(..., expected=...)``): if another writer changed the
conversation meanwhile, nothing is overwritten and every later save of this writer
reports ``StoreConflict`` too, until it is attached again (as a new conversation, or
to the conversation as it is now stored).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Sequence

from reactivex import Observable
from reactivex.abc import DisposableBase

from .._models import Message
from ..errors import ConversationNotFoundError, StoreError
from ._protocol import ConversationStore

__all__ = ["StoreWriter", "attach", "load_history"]

log = logging.getLogger("rxchat.stores")

ModelSource = str | None | Callable[[], str | None]
"""The model to record: a name, or a function asked at each save (it may change)."""


class StoreWriter(DisposableBase):
    """The subscription that writes a history to a store; dispose it to stop writing.

    Attributes:
        store: Where the history goes.
        conversation_id: The conversation written to; None until the first message
            is committed, when attached without an id.
        error: The last save's error (a ``StoreConflict`` once another writer
            changed the conversation), None while saves succeed.
    """

    def __init__(
        self,
        store: ConversationStore,
        conversation_id: str | None,
        model: ModelSource,
        on_error: Callable[[StoreError], object] | None,
        base: Sequence[Message] | None = None,
    ) -> None:
        self.store = store
        self.conversation_id = conversation_id
        self.error: StoreError | None = None
        self._model = model
        self._on_error = on_error
        self._last: Sequence[Message] | None = None
        self._base: Sequence[Message] = () if base is None else tuple(base)
        self._subscription: DisposableBase | None = None
        self._disposed = False
        self._checks = _takes_expected(store)

    def write(self, messages: Sequence[Message]) -> None:
        """Save ``messages`` as the conversation's whole history.

        Before any message but the system prompt exists, nothing is written (an empty
        chat leaves no conversation behind); the conversation is created at the first.
        """
        if self._disposed or messages == self._last:
            return
        model = self._model() if callable(self._model) else self._model
        try:
            if self.conversation_id is None:
                if all(m.role == "system" for m in messages):
                    return
                self.conversation_id = self.store.create(model=model)
                self._base = ()
            if self._checks:
                self.store.save_messages(
                    self.conversation_id, messages, model=model, expected=self._base
                )
            else:  # a store written before compare-and-set: the last writer wins
                self.store.save_messages(self.conversation_id, messages, model=model)
        except StoreError as exc:
            self.error = exc
            self._report(exc)
            return
        self.error = None
        self._last = self._base = messages

    def _report(self, error: StoreError) -> None:
        if self._on_error is not None:
            self._on_error(error)
        else:
            log.warning("The conversation was not saved: %s", error)

    def dispose(self) -> None:
        """Stop writing (what was written stays)."""
        self._disposed = True
        if self._subscription is not None:
            self._subscription.dispose()


def _takes_expected(store: ConversationStore) -> bool:
    """Whether ``store.save_messages`` takes ``expected`` (stores of your own written
    for an earlier rxchat may not)."""
    try:
        parameters = inspect.signature(store.save_messages).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(p.name == "expected" or p.kind is p.VAR_KEYWORD for p in parameters)


def attach(
    history: Observable[tuple[Message, ...]],
    store: ConversationStore,
    conversation_id: str | None = None,
    *,
    model: ModelSource = None,
    on_error: Callable[[StoreError], object] | None = None,
    base: Sequence[Message] | None = None,
) -> StoreWriter:
    """Save every history ``history`` emits to ``store``, as it is emitted.

    Call it once the session holds the history it resumes (see ``load_history``):
    the first value emitted is written too, and replaces what was stored.

    Args:
        history: The committed history after every change (``session.history``).
        store: Where to save it.
        conversation_id: The conversation to write; None creates one at the first
            committed message (read it from the writer's ``conversation_id``).
        model: The model to record, or a function returning it at each save.
        on_error: Called with a ``StoreError`` when a save fails (the conversation
            goes on); by default the failure is logged as a warning. A
            ``StoreConflict`` says another writer changed the conversation.
        base: The stored history the session resumed (what ``load_history``
            returned); a save finding anything else stored raises ``StoreConflict``.
            By default what is stored when ``attach`` is called.

    Returns:
        The writer; dispose it to stop.

    Raises:
        StoreError: ``base`` was not given and the stored history could not be read.
    """
    if base is None and conversation_id is not None:
        try:
            base = load_history(store, conversation_id)
        except ConversationNotFoundError:
            base = ()  # the first save says so, through on_error
    writer = StoreWriter(store, conversation_id, model, on_error, base)
    writer._subscription = history.subscribe(on_next=writer.write)
    return writer


def load_history(store: ConversationStore, conversation_id: str) -> tuple[Message, ...]:
    """A stored conversation's messages, to resume it.

    Raises:
        ConversationNotFoundError: No conversation has this id.
        StoreError: The store could not be read.
    """
    return store.get(conversation_id).messages
