"""rxchat.operators in virtual time: whole message lists and subscription windows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reactivex import Observable
from reactivex.testing import ReactiveTest, TestScheduler

from rxchat import FunctionCall, Message, ToolCall, Usage
from rxchat import operators as rxops
from rxchat.errors import StreamInterrupted

on_next = ReactiveTest.on_next
on_completed = ReactiveTest.on_completed
on_error = ReactiveTest.on_error
subscribe = ReactiveTest.subscribe

Operator = Callable[[Observable[Message]], Observable[Any]]


def call(index: int, id: str | None = None, name: str | None = None, args: str = "") -> ToolCall:
    return ToolCall(index=index, id=id, function=FunctionCall(name, args))


def run(
    operator: Operator, *records: Any, disposed: int = 1000, cold: bool = False
) -> tuple[list[Any], list[Any]]:
    """Play ``records`` through ``operator``; return (results, source subscriptions)."""
    scheduler = TestScheduler()
    xs = (scheduler.create_cold_observable if cold else scheduler.create_hot_observable)(
        *records
    )
    results = scheduler.start(lambda: xs.pipe(operator), disposed=disposed)
    return results.messages, xs.subscriptions


# --- accumulate ----------------------------------------------------------------------


def test_accumulate_emits_running_snapshots() -> None:
    messages, subscriptions = run(
        rxops.accumulate(),
        on_next(210, Message(content="He")),
        on_next(220, Message(content="ll")),
        on_next(230, Message(content="o", finish_reason="stop")),
        on_completed(240),
    )
    assert messages == [
        on_next(210, Message(content="He")),
        on_next(220, Message(content="Hell")),
        on_next(230, Message(content="Hello", finish_reason="stop")),
        on_completed(240),
    ]
    assert subscriptions == [subscribe(200, 240)]


def test_accumulate_merges_every_field() -> None:
    usage = Usage(1, 2, 3)
    messages, _ = run(
        rxops.accumulate(),
        on_next(210, Message(role="assistant", reasoning_content="Hm")),
        on_next(220, Message(content="", tool_calls=(call(0, "c1", "f", ""),))),
        on_next(230, Message(tool_calls=(call(0, args='{"a"'),))),
        on_next(240, Message(tool_calls=(call(0, args=":1}"),), finish_reason="tool_calls")),
        on_next(250, Message(usage=usage)),
        on_completed(260),
    )
    last = messages[-2].value.value
    assert last == Message(
        content="", reasoning_content="Hm", tool_calls=(call(0, "c1", "f", '{"a":1}'),),
        finish_reason="tool_calls", usage=usage,
    )


def test_accumulate_disposed_early_unsubscribes_the_source() -> None:
    messages, subscriptions = run(
        rxops.accumulate(),
        on_next(210, Message(content="a")),
        on_next(220, Message(content="b")),
        on_next(230, Message(content="c")),
        on_completed(240),
        disposed=225,
    )
    assert messages == [on_next(210, Message(content="a")), on_next(220, Message(content="ab"))]
    assert subscriptions == [subscribe(200, 225)]


def test_accumulate_passes_the_error_through() -> None:
    error = StreamInterrupted("cut off")
    messages, subscriptions = run(
        rxops.accumulate(),
        on_next(210, Message(content="a")),
        on_error(220, error),
    )
    assert messages == [on_next(210, Message(content="a")), on_error(220, error)]
    assert subscriptions == [subscribe(200, 220)]


def test_accumulate_keeps_no_state_between_subscriptions() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(
        on_next(10, Message(content="a")), on_next(20, Message(content="b")), on_completed(30)
    )
    snapshots = xs.pipe(rxops.accumulate())
    first = scheduler.create_observer()
    second = scheduler.create_observer()
    scheduler.schedule_absolute(100, lambda *_: snapshots.subscribe(first))
    scheduler.schedule_absolute(200, lambda *_: snapshots.subscribe(second))
    scheduler.start()
    contents: list[Any] = [m.value for m in first.messages[:-1] + second.messages[:-1]]
    assert [n.value.content for n in contents] == ["a", "ab", "a", "ab"]
    assert xs.subscriptions == [subscribe(100, 130), subscribe(200, 230)]


# --- final_message -------------------------------------------------------------------


def test_final_message_joins_content_and_reasoning() -> None:
    messages, subscriptions = run(
        rxops.final_message(),
        on_next(210, Message(role="assistant", content="", reasoning_content="Let me ")),
        on_next(220, Message(reasoning_content="think.")),
        on_next(230, Message(content="Hel", reasoning_content=None)),
        on_next(240, Message(content="lo")),
        on_next(250, Message(finish_reason="stop")),
        on_completed(260),
    )
    assert messages == [
        on_next(260, Message(content="Hello", reasoning_content="Let me think.",
                             finish_reason="stop")),
        on_completed(260),
    ]
    assert subscriptions == [subscribe(200, 260)]


def test_final_message_merges_parallel_tool_calls_by_index() -> None:
    messages, _ = run(
        rxops.final_message(),
        on_next(210, Message(tool_calls=(call(0, "call_a", "get_country", ""),))),
        on_next(220, Message(tool_calls=(call(0, args="{"),))),
        on_next(230, Message(tool_calls=(call(1, "call_b", "get_product", ""),))),
        on_next(240, Message(tool_calls=(call(0, args="}"), call(1, args="{}")))),
        on_next(250, Message(finish_reason="tool_calls")),
        on_completed(260),
    )
    assert messages[0].value.value.tool_calls == (
        call(0, "call_a", "get_country", "{}"),
        call(1, "call_b", "get_product", "{}"),
    )
    assert messages[0].value.value.finish_reason == "tool_calls"


def test_final_message_keeps_a_first_index_other_than_zero() -> None:
    messages, _ = run(
        rxops.final_message(),
        on_next(210, Message(content="Now listing")),
        on_next(220, Message(tool_calls=(call(1, "toolu_1", "list", ""),))),
        on_next(230, Message(tool_calls=(call(1, args=""),))),
        on_completed(240),
    )
    assert messages[0].value.value.tool_calls == (call(1, "toolu_1", "list", ""),)


def test_final_message_falls_back_to_id_when_an_index_is_reused() -> None:
    messages, _ = run(
        rxops.final_message(),
        on_next(210, Message(tool_calls=(call(0, "call_a", "f", "{}"),))),
        on_next(220, Message(tool_calls=(call(0, "call_b", "g", ""),))),
        on_next(230, Message(tool_calls=(call(0, "call_b", None, "[]"),))),
        on_completed(240),
    )
    calls = messages[0].value.value.tool_calls
    assert [(c.id, c.function.name, c.function.arguments) for c in calls] == [
        ("call_a", "f", "{}"), ("call_b", "g", "[]"),
    ]
    assert len({c.index for c in calls}) == 2


def test_final_message_takes_usage_from_a_trailing_usage_only_delta() -> None:
    usage = Usage(78, 9, 87, {"prompt_tokens_details": {"cached_tokens": 0}})
    messages, _ = run(
        rxops.final_message(),
        on_next(210, Message(content="Paris.")),
        on_next(220, Message(finish_reason="stop")),
        on_next(230, Message(usage=usage)),
        on_completed(240),
    )
    assert messages == [
        on_next(240, Message(content="Paris.", finish_reason="stop", usage=usage)),
        on_completed(240),
    ]


def test_final_message_keeps_the_last_non_null_finish_reason_and_usage() -> None:
    messages, _ = run(
        rxops.final_message(),
        on_next(210, Message(content="a", finish_reason="length", usage=Usage(1, 1, 2))),
        on_next(220, Message(content="", finish_reason="length", usage=Usage(1, 2, 3))),
        on_next(230, Message(content="", finish_reason=None)),
        on_completed(240),
    )
    final = messages[0].value.value
    assert (final.finish_reason, final.usage) == ("length", Usage(1, 2, 3))


def test_final_message_passes_the_error_through_and_emits_nothing() -> None:
    error = StreamInterrupted("cut off")
    messages, subscriptions = run(
        rxops.final_message(),
        on_next(210, Message(content="partial")),
        on_error(220, error),
    )
    assert messages == [on_error(220, error)]
    assert subscriptions == [subscribe(200, 220)]


def test_final_message_of_an_empty_stream() -> None:
    messages, subscriptions = run(rxops.final_message(), on_completed(250))
    assert messages == [on_next(250, Message()), on_completed(250)]
    assert subscriptions == [subscribe(200, 250)]


def test_final_message_disposed_before_completion_emits_nothing() -> None:
    messages, subscriptions = run(
        rxops.final_message(),
        on_next(210, Message(content="a")), on_completed(300), disposed=250,
    )
    assert messages == []
    assert subscriptions == [subscribe(200, 250)]


def test_final_message_of_a_cold_source() -> None:
    messages, subscriptions = run(
        rxops.final_message(),
        on_next(10, Message(content="a")), on_next(20, Message(content="b")), on_completed(30),
        cold=True,
    )
    assert messages == [on_next(230, Message(content="ab")), on_completed(230)]
    assert subscriptions == [subscribe(200, 230)]


def test_merge_delta_and_merge_deltas_agree() -> None:
    deltas = [
        Message(reasoning_content="r"), Message(content="a", name="bot"),
        Message(tool_calls=(call(0, "x", "f", "{"),)), Message(tool_calls=(call(0, args="}"),)),
        Message(finish_reason="stop"), Message(usage=Usage(1, 2, 3)),
    ]
    folded = deltas[0]
    for delta in deltas[1:]:
        folded = rxops.merge_delta(folded, delta)
    assert folded == rxops.merge_deltas(deltas)
    assert deltas[2].tool_calls == (call(0, "x", "f", "{"),)  # inputs unchanged


# --- content / reasoning -------------------------------------------------------------


def test_content_emits_the_non_empty_text_pieces() -> None:
    messages, subscriptions = run(
        rxops.content(),
        on_next(210, Message(role="assistant", content="")),
        on_next(220, Message(reasoning_content="hm")),
        on_next(230, Message(content="He")),
        on_next(240, Message(content=None, finish_reason="stop")),
        on_next(250, Message(content="llo")),
        on_completed(260),
    )
    assert messages == [on_next(230, "He"), on_next(250, "llo"), on_completed(260)]
    assert subscriptions == [subscribe(200, 260)]


def test_reasoning_emits_the_non_empty_reasoning_pieces() -> None:
    error = StreamInterrupted("cut")
    messages, subscriptions = run(
        rxops.reasoning(),
        on_next(210, Message(reasoning_content="Hm")),
        on_next(220, Message(reasoning_content="")),
        on_next(230, Message(reasoning_content="m")),
        on_next(240, Message(content="Hi")),
        on_error(250, error),
    )
    assert messages == [on_next(210, "Hm"), on_next(230, "m"), on_error(250, error)]
    assert subscriptions == [subscribe(200, 250)]


def test_content_disposed_early() -> None:
    messages, subscriptions = run(
        rxops.content(),
        on_next(210, Message(content="a")), on_next(230, Message(content="b")),
        on_completed(240), disposed=220,
    )
    assert messages == [on_next(210, "a")]
    assert subscriptions == [subscribe(200, 220)]


# --- several choices (n > 1) ---------------------------------------------------------


def test_accumulate_keeps_each_choice_apart() -> None:
    messages, _ = run(
        rxops.accumulate(),
        on_next(210, Message(content="A", index=0)),
        on_next(220, Message(content="B", index=1)),
        on_next(230, Message(content="a", index=0)),
        on_next(240, Message(content="b", finish_reason="stop", index=1)),
        on_completed(250),
    )
    assert messages == [
        on_next(210, Message(content="A", index=0)),
        on_next(220, Message(content="B", index=1)),
        on_next(230, Message(content="Aa", index=0)),
        on_next(240, Message(content="Bb", finish_reason="stop", index=1)),
        on_completed(250),
    ]


def test_final_message_emits_one_message_per_choice_in_index_order() -> None:
    messages, subscriptions = run(
        rxops.final_message(),
        on_next(210, Message(content="B", index=1)),
        on_next(220, Message(content="A", index=0)),
        on_next(230, Message(content="b", finish_reason="length", index=1)),
        on_next(240, Message(content="a", finish_reason="stop", index=0)),
        on_completed(250),
    )
    assert messages == [
        on_next(250, Message(content="Aa", finish_reason="stop", index=0)),
        on_next(250, Message(content="Bb", finish_reason="length", index=1)),
        on_completed(250),
    ]
    assert subscriptions == [subscribe(200, 250)]


# --- tool_calls ----------------------------------------------------------------------


def test_tool_calls_emits_each_call_as_soon_as_the_next_begins() -> None:
    messages, subscriptions = run(
        rxops.tool_calls(),
        on_next(210, Message(tool_calls=(call(0, "a", "f"),))),
        on_next(220, Message(tool_calls=(call(0, args='{"x"'),))),
        on_next(230, Message(tool_calls=(call(0, args=": 1}"),))),
        on_next(240, Message(tool_calls=(call(1, "b", "g"),))),
        on_next(250, Message(tool_calls=(call(1, args="{}"),))),
        on_next(260, Message(finish_reason="tool_calls")),
        on_completed(270),
    )
    assert messages == [
        on_next(240, call(0, "a", "f", '{"x": 1}')),
        on_next(260, call(1, "b", "g", "{}")),
        on_completed(270),
    ]
    assert subscriptions == [subscribe(200, 270)]


def test_tool_calls_emits_the_last_call_at_completion_without_a_finish_reason() -> None:
    messages, _ = run(
        rxops.tool_calls(),
        on_next(210, Message(content="thinking")),
        on_next(220, Message(tool_calls=(call(0, "a", "f", "{}"),))),
        on_completed(230),
    )
    assert messages == [on_next(230, call(0, "a", "f", "{}")), on_completed(230)]


def test_tool_calls_drops_an_unfinished_call_on_error_and_reads_choice_zero_only() -> None:
    error = StreamInterrupted("cut")
    messages, _ = run(
        rxops.tool_calls(),
        on_next(210, Message(tool_calls=(call(0, "other", "h", "{}"),), index=1)),
        on_next(220, Message(tool_calls=(call(0, "a", "f", '{"x'),))),
        on_error(230, error),
    )
    assert messages == [on_error(230, error)]
