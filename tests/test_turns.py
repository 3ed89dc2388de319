"""The session's actor as plain values: commands folded by ``step``, effects checked."""

from __future__ import annotations

from functools import reduce

from reactivex import Observer

from rxchat import ChatState, Message
from rxchat._commands import (
    Ask,
    Asked,
    Cancel,
    Connect,
    Deliver,
    End,
    Open,
    Shut,
    Streamed,
    Withdrawn,
)
from rxchat._history import DeltaReceived, TurnCompleted
from rxchat._turns import Actor, step
from rxchat.errors import SessionError

QUIET: Observer[Message] = Observer(lambda _v: None, lambda _e: None, lambda: None)


def ask(text: str | None) -> Ask:
    return Ask(None if text is None else Message(role="user", content=text), QUIET)


def fold(*commands: object) -> Actor:
    return reduce(step, commands, Actor(ChatState()))  # type: ignore[arg-type]


def test_an_ask_starts_at_once_and_its_stream_opens_on_the_next_command() -> None:
    one = ask("one")
    started = fold(Asked(one))
    assert started.running is one and started.effects == (Open(one),)
    assert started.state.status == "streaming" and started.state.pending == one.message
    assert step(started, Open(one)).effects == (Connect(one),)


def test_a_cancel_folded_before_open_means_no_stream_is_connected() -> None:
    one = ask("one")
    cancelled = fold(Asked(one), Cancel(None))
    assert cancelled.effects == (Shut(one), Deliver(one, Message(finish_reason="cancelled")),
                                 End(one))
    assert step(cancelled, Open(one)).effects == ()
    assert [m.content for m in cancelled.state.messages] == ["one", ""]


def test_a_withdrawn_waiting_ask_leaves_the_queue_and_never_starts() -> None:
    one, two = ask("one"), ask("two")
    queued = fold(Asked(one), Asked(two))
    assert queued.waiting == (two,) and queued.state.queued == (two.message,)
    withdrawn = step(queued, Withdrawn(two))
    assert withdrawn.waiting == () and withdrawn.state.queued == ()
    done = step(step(withdrawn, Streamed(one, DeltaReceived(1, Message(content="a")))),
                Streamed(one, TurnCompleted(1)))
    assert done.running is None and done.effects == (End(one),)


def test_late_events_of_an_ended_turn_change_nothing() -> None:
    one = ask("one")
    ended = fold(Asked(one), Cancel(None))
    late = step(ended, Streamed(one, DeltaReceived(1, Message(content="late"))))
    assert late.state is ended.state and late.effects == ()


def test_regenerate_with_nothing_to_regenerate_ends_with_an_error() -> None:
    regenerate = ask(None)
    actor = fold(Asked(regenerate))
    (end,) = actor.effects
    assert isinstance(end, End) and isinstance(end.error, SessionError)
    assert actor.running is None and actor.state == ChatState()
