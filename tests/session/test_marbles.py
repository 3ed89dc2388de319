"""marble_deltas and ScriptedCompletion: delta streams in virtual time."""

from __future__ import annotations

import pytest
from reactivex.testing import ReactiveTest, TestScheduler

from rxchat import Message
from rxchat.errors import StreamInterrupted
from rxchat.testing import ScriptedCompletion, marble_deltas


def test_letters_become_deltas_at_their_virtual_time() -> None:
    scheduler = TestScheduler()
    done = Message(content="lo", finish_reason="stop")
    source = marble_deltas("-a-b|", {"a": "Hel", "b": done}, scheduler=scheduler)
    observer = scheduler.start(lambda: source)
    assert observer.messages == [
        ReactiveTest.on_next(201, Message(content="Hel")),
        ReactiveTest.on_next(203, done),
        ReactiveTest.on_completed(204),
    ]


def test_hash_is_a_stream_interrupted_by_default() -> None:
    scheduler = TestScheduler()
    observer = scheduler.start(lambda: marble_deltas("-a#", {"a": "x"}, scheduler=scheduler))
    error = observer.messages[-1].value.exception
    assert isinstance(error, StreamInterrupted) and observer.messages[-1].time == 202


def test_scripted_completion_records_calls_and_refuses_extra_ones() -> None:
    scheduler = TestScheduler()
    complete = ScriptedCompletion(marble_deltas("a|", {"a": "x"}, scheduler=scheduler))
    complete({"messages": [{"role": "user", "content": "hi"}]}, scheduler=scheduler)
    assert complete.calls == [{"messages": [{"role": "user", "content": "hi"}]}]
    with pytest.raises(AssertionError, match="more times than scripted"):
        complete({"messages": []})
