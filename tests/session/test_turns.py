"""The session's actor as plain values: commands folded by ``step``, effects checked."""

from __future__ import annotations

from functools import reduce

from reactivex import Observer

from rxchat import ChatState, Message
from rxchat._session.commands import (
    Ask,
    Asked,
    Cancel,
    Command,
    Connect,
    Deliver,
    End,
    Open,
    Shut,
    Streamed,
    Withdrawn,
)
from rxchat._session.events import DeltaReceived, TurnCompleted
from rxchat._session.turns import Actor, step
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


# --- the tool loop as plain values ------------------------------------------------------


def tool_turn(*ids: str, concurrency: int = 2, max_steps: int = 8) -> tuple[Ask, Actor]:
    """An actor whose turn's reply called tools `ids` and has just completed."""
    from rxchat import FunctionCall, ToolCall
    from rxchat._session.turns import ToolLoop

    one = ask("go")
    calls = tuple(ToolCall(i, id, "function", FunctionCall("f", "{}")) for i, id in enumerate(ids))
    seed = Actor(ChatState(), loop=ToolLoop(max_steps, concurrency))
    commands: list[Command] = [Asked(one), Open(one),
                               Streamed(one, DeltaReceived(1, Message(tool_calls=calls))),
                               Streamed(one, TurnCompleted(1))]
    actor = reduce(step, commands, seed)
    return one, actor


def finished(one: Ask, actor: Actor, id: str, text: str = "r") -> Actor:
    from rxchat._session.commands import ToolReturned
    from rxchat._session.events import ToolFinished

    (call,) = [c for c in actor.state.running_tools if c.id == id]
    return step(actor, ToolReturned(one, ToolFinished(actor.state.turn, call, f"{text}-{id}")))


def test_a_reply_with_calls_commits_a_step_and_starts_calls_up_to_the_limit() -> None:
    from rxchat._session.commands import RunTool

    one, actor = tool_turn("a", "b", "c")
    assert actor.state.status == "tools" and actor.running is one
    assert [m.role for m in actor.state.messages] == ["user", "assistant"]
    assert [(type(e), e.call.id) for e in actor.effects if isinstance(e, RunTool)] == [
        (RunTool, "a"), (RunTool, "b")]
    after_b = finished(one, actor, "b")
    assert [e.call.id for e in after_b.effects if isinstance(e, RunTool)] == ["c"]
    assert [c.id for c in after_b.state.running_tools] == ["a", "c"]
    done = finished(one, finished(one, after_b, "c"), "a")
    assert done.effects == (Open(one),) and done.state.status == "streaming"
    assert [(m.role, m.content) for m in done.state.messages][2:] == [
        ("tool", "r-a"), ("tool", "r-b"), ("tool", "r-c")]
    assert done.state.step == 2 and done.state.pending is None


def test_a_late_result_of_a_cancelled_turn_changes_nothing() -> None:
    from rxchat._session.commands import ToolReturned
    from rxchat._session.events import ToolFinished

    one, actor = tool_turn("a")
    cancelled = step(actor, Cancel(None))
    assert cancelled.effects[0] == Shut(one) and cancelled.state.status == "idle"
    assert [m.role for m in cancelled.state.messages] == ["user", "assistant", "tool"]
    late = ToolReturned(one, ToolFinished(1, actor.state.running_tools[0], "late"))
    ignored = step(cancelled, late)
    assert ignored.state is cancelled.state and ignored.effects == ()


def test_the_step_limit_fails_the_turn_after_committing_the_results() -> None:
    one, actor = tool_turn("a", max_steps=1)
    failed = finished(one, actor, "a")
    (end,) = failed.effects
    assert isinstance(end, End) and end.ask is one
    assert type(end.error).__name__ == "StepLimitError" and failed.running is None
    assert failed.state.status == "error" and failed.state.failed is None
    assert [m.role for m in failed.state.messages] == ["user", "assistant", "tool"]
