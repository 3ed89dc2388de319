"""The pure reducer of a conversation: plain function calls, no Rx, no threads."""

from __future__ import annotations

from functools import reduce

from rxchat import ChatState, Message
from rxchat._session.events import (
    DeltaReceived,
    Restored,
    SessionReset,
    TurnCancelled,
    TurnCompleted,
    TurnEvent,
    TurnFailed,
    TurnStarted,
    TurnUndone,
)
from rxchat._session.reducer import apply_event
from rxchat._session.state import last_turn_start, system_prefix
from rxchat.errors import StreamInterrupted

SYSTEM = Message(role="system", content="S")
HI = Message(role="user", content="hi")


def fold(state: ChatState, *events: TurnEvent) -> ChatState:
    return reduce(apply_event, events, state)


def one_turn(state: ChatState, user: Message, *pieces: str) -> ChatState:
    started = apply_event(state, TurnStarted(user))
    deltas = [DeltaReceived(started.turn, Message(content=p)) for p in pieces]
    return fold(started, *deltas, TurnCompleted(started.turn))


def test_a_turn_commits_its_message_and_reply_together() -> None:
    seed = ChatState(messages=(SYSTEM,))
    started = apply_event(seed, TurnStarted(HI))
    assert (started.status, started.pending, started.turn) == ("streaming", HI, 1)
    assert started.messages == (SYSTEM,) and started.partial is None
    streaming = fold(started, DeltaReceived(1, Message(content="He")),
                     DeltaReceived(1, Message(content="llo", finish_reason="stop")))
    assert streaming.messages == (SYSTEM,)
    assert streaming.partial == Message(content="Hello", finish_reason="stop")
    done = apply_event(streaming, TurnCompleted(1))
    assert done == ChatState(messages=(SYSTEM, HI, streaming.partial), turn=1)
    assert seed == ChatState(messages=(SYSTEM,))  # the inputs are never changed


def test_events_that_do_not_apply_return_the_same_state() -> None:
    idle = ChatState(messages=(SYSTEM,))
    for event in (DeltaReceived(0, Message(content="x")), TurnCompleted(0), TurnCancelled(0),
                  TurnFailed(0, StreamInterrupted("x")), TurnUndone(),
                  TurnStarted(HI, regenerate=True)):
        assert apply_event(idle, event) is idle
    streaming = apply_event(idle, TurnStarted(HI))
    for event in (DeltaReceived(0, Message(content="stale")), TurnCompleted(2),
                  TurnStarted(HI), TurnUndone()):
        assert apply_event(streaming, event) is streaming


def test_a_failure_keeps_history_and_the_failed_message() -> None:
    error = StreamInterrupted("cut")
    state = fold(ChatState(), TurnStarted(HI), DeltaReceived(1, Message(content="par")),
                 TurnFailed(1, error))
    assert (state.status, state.error, state.failed, state.pending) == ("error", error, HI, None)
    assert state.messages == () and state.partial == Message(content="par")
    restarted = apply_event(state, TurnStarted(HI))
    assert restarted.error is None and restarted.failed is None and restarted.partial is None


def test_cancel_commits_the_partial_reply_marked_cancelled() -> None:
    state = fold(ChatState(), TurnStarted(HI), DeltaReceived(1, Message(content="Once")),
                 TurnCancelled(1))
    assert state.messages == (HI, Message(content="Once", finish_reason="cancelled"))
    empty = fold(ChatState(), TurnStarted(HI), TurnCancelled(1))
    assert empty.messages[-1] == Message(content="", finish_reason="cancelled")


def test_regenerating_replaces_the_last_turn_only_on_success() -> None:
    state = one_turn(ChatState(messages=(SYSTEM,)), HI, "one")
    regen = apply_event(state, TurnStarted(HI, regenerate=True))
    assert regen.context == (SYSTEM,) and regen.messages == state.messages
    assert fold(regen, TurnFailed(2, StreamInterrupted("x"))).messages == state.messages
    replaced = fold(regen, DeltaReceived(2, Message(content="two")), TurnCompleted(2))
    assert replaced.messages == (SYSTEM, HI, Message(content="two"))


def test_undo_reset_and_restore_edit_the_history() -> None:
    two = one_turn(one_turn(ChatState(messages=(SYSTEM,)), HI, "a"), HI, "b")
    assert [m.content for m in apply_event(two, TurnUndone()).messages] == ["S", "hi", "a"]
    assert apply_event(two, SessionReset()).messages == (SYSTEM,)
    assert apply_event(two, Restored((HI,))).messages == (HI,)
    assert apply_event(two, SessionReset()).turn == two.turn


def test_partial_is_merged_once_per_state_from_one_shared_log() -> None:
    state = apply_event(ChatState(), TurnStarted(HI))
    states = []
    for n in range(1000):
        state = apply_event(state, DeltaReceived(1, Message(content=str(n % 10))))
        states.append(state)
    assert states[-1].reply is states[0].reply and states[-1].count == 1000  # shared
    assert states[-1].partial is states[-1].partial  # cached
    assert states[9].partial == Message(content="0123456789")  # an older state, read late
    assert states[-1].delta == Message(content="9")


def test_a_state_folded_twice_does_not_see_the_other_branch() -> None:
    start = apply_event(apply_event(ChatState(), TurnStarted(HI)),
                        DeltaReceived(1, Message(content="a")))
    left = apply_event(start, DeltaReceived(1, Message(content="b")))
    right = apply_event(start, DeltaReceived(1, Message(content="c")))
    assert left.partial == Message(content="ab") and right.partial == Message(content="ac")
    assert start.partial == Message(content="a")


def test_turn_boundaries() -> None:
    tool_call = Message(content=None)
    messages = (SYSTEM, HI, tool_call, Message(role="tool", content="r"), Message(content="a"))
    assert system_prefix(messages) == (SYSTEM,)
    assert last_turn_start(messages) == 1
    assert last_turn_start((SYSTEM,)) == 1
    assert last_turn_start((SYSTEM, Message(content="greeting"))) == 1
    assert last_turn_start(()) == 0
