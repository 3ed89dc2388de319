"""The structured operators in virtual time: whole message lists and subscription
windows (a fail-fast error ends the source's subscription at the offending delta)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypedDict

import pydantic
import pytest
import reactivex
from reactivex import Observable
from reactivex import operators as ops
from reactivex.testing import ReactiveTest, TestScheduler

import rxchat
from rxchat import Message, ToolCall
from rxchat import operators as rxops
from rxchat._models import FunctionCall
from rxchat.errors import ConfigurationError, StructuredOutputError

on_next = ReactiveTest.on_next
on_completed = ReactiveTest.on_completed
subscribe = ReactiveTest.subscribe


def run(operator: Callable[[Observable[Message]], Observable[Any]], *pieces: str,
        ) -> tuple[list[Any], list[Any]]:
    """Each piece a delta 10 ticks apart from 210, completed 10 after the last."""
    scheduler = TestScheduler()
    records = [on_next(210 + 10 * i, Message(content=p)) for i, p in enumerate(pieces)]
    xs = scheduler.create_hot_observable(*records, on_completed(210 + 10 * len(pieces)))
    results = scheduler.start(lambda: xs.pipe(operator, ops.map(copy.deepcopy)))
    return results.messages, xs.subscriptions


def values(messages: list[Any]) -> list[Any]:
    return [(m.time, m.value.value) for m in messages if m.value.kind == "N"]


def error_of(messages: list[Any]) -> tuple[int, Exception]:
    last = messages[-1]
    assert last.value.kind == "E", messages
    return last.time, last.value.exception


def test_partial_json_emits_the_value_as_it_grows() -> None:
    messages, subscriptions = run(rxops.partial_json(), '{"a": [1', ", 2", '3], "b": "h', 'i"}')
    assert values(messages) == [
        (210, {"a": []}), (220, {"a": [1]}), (230, {"a": [1, 23], "b": "h"}),
        (240, {"a": [1, 23], "b": "hi"}),
    ]
    assert messages[-1] == on_completed(250)
    assert subscriptions == [subscribe(200, 250)]


def test_partial_json_emits_a_trailing_number_when_the_stream_completes() -> None:
    messages, _ = run(rxops.partial_json(), "4", "2")
    assert values(messages) == [(230, 42)]


def test_partial_json_subscriptions_do_not_share_state() -> None:
    source = reactivex.of(Message(content='{"a": '), Message(content="1}"))
    piped = source.pipe(rxops.partial_json(), ops.map(copy.deepcopy))
    assert piped.pipe(ops.to_list()).run() == [{}, {"a": 1}]
    assert piped.pipe(ops.to_list()).run() == [{}, {"a": 1}]


def test_fail_fast_on_a_forbidden_key_ends_the_subscription_there() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}},
              "additionalProperties": False}
    messages, subscriptions = run(rxops.partial_json(schema), '{"n": 1, ', '"x": 2', ', "y": 3}')
    assert values(messages) == [(210, {"n": 1})]
    time, error = error_of(messages)
    assert time == 220 and isinstance(error, StructuredOutputError)
    assert error.path == "$.x" and error.text == '{"n": 1, "x": 2'
    assert subscriptions == [subscribe(200, 220)]


@pytest.mark.parametrize("pieces, at, path", [
    (('{"kind": "ca', 't"', "}"), 220, "$.kind"),          # enum: no value begins "cat"
    (('{"kind": "cake", "n": "', "3", '"}'), 210, "$.n"),   # a string where an integer goes
    (('{"kind": "cake", "n": [', "]}"), 210, "$.n"),        # an array where an integer goes
    (('{"kind": "cake"', "}"), 220, "$"),                   # required "n" missing at close
    (('{"kind": "cake", "n": 1, "tags": ["a", ', "2]}"), 220, "$.tags[1]"),
])
def test_fail_fast_at_the_first_part_that_cannot_fit(
    pieces: tuple[str, ...], at: int, path: str
) -> None:
    schema = {"type": "object", "required": ["kind", "n"], "properties": {
        "kind": {"enum": ["cake", "bread"]}, "n": {"type": "integer"},
        "tags": {"type": "array", "items": {"type": "string"}}}}
    messages, subscriptions = run(rxops.partial_json(schema), *pieces)
    time, error = error_of(messages)
    assert (time, getattr(error, "path", None)) == (at, path), error
    assert subscriptions == [subscribe(200, at)]


def test_json_items_emits_each_element_once_when_complete() -> None:
    messages, _ = run(rxops.json_items(), '[{"n": 1}, {"n', '": 2}', ", 3", "]")
    assert values(messages) == [(210, {"n": 1}), (220, {"n": 2}), (240, 3)]
    assert messages[-1] == on_completed(250)


def test_json_items_under_a_key() -> None:
    messages, _ = run(rxops.json_items("xs"), '{"a": [0], "xs": ["p",', ' "q"]}')
    assert values(messages) == [(210, "p"), (220, "q")]


def test_json_items_of_an_object_fails_at_once() -> None:
    messages, subscriptions = run(rxops.json_items(), '{"a"', ": 1}")
    time, error = error_of(messages)
    assert time == 210 and isinstance(error, StructuredOutputError)
    assert subscriptions == [subscribe(200, 210)]


def test_json_items_with_a_schema_fails_fast() -> None:
    schema = {"type": "array", "items": {"type": "integer"}}
    messages, subscriptions = run(rxops.json_items(schema=schema), "[1, 2, ", '"x"', ", 4]")
    assert values(messages) == [(210, 1), (210, 2)]
    assert error_of(messages)[0] == 220
    assert subscriptions == [subscribe(200, 220)]


@dataclass
class Step:
    text: str
    minutes: int = 5


@dataclass
class Recipe:
    title: str
    steps: list[Step]
    kind: Literal["cake", "bread"] = "cake"
    note: str | None = None


class RecipeModel(pydantic.BaseModel):
    title: str
    servings: int = 2


class RecipeDict(TypedDict):
    title: str


RECIPE = '{"title": "Cake", "steps": [{"text": "mix", "minutes": null}], "kind": "bread", ' \
    '"note": null}'


def test_parsed_builds_a_dataclass_with_defaults_for_strict_nulls() -> None:
    messages, _ = run(rxops.parsed(Recipe), RECIPE[:20], RECIPE[20:])
    assert values(messages) == [(230, Recipe("Cake", [Step("mix", 5)], "bread", None))]


def test_parsed_validates_a_pydantic_model_through_pydantic() -> None:
    messages, _ = run(rxops.parsed(RecipeModel), '{"title": "Cake", ', '"servings": null}')
    assert values(messages) == [(230, RecipeModel(title="Cake", servings=2))]


def test_parsed_of_a_typeddict_or_schema_is_plain_json() -> None:
    assert run(rxops.parsed(RecipeDict), '{"title": "x"}')[0][0].value.value == {"title": "x"}
    schema = rxchat.response_format({"type": "object", "properties": {"a": {"type": "integer"}}})
    assert run(rxops.parsed(schema), '{"a": 1}')[0][0].value.value == {"a": 1}


def test_parsed_reports_cut_off_json_with_the_raw_text() -> None:
    messages, _ = run(rxops.parsed(Recipe), '{"title": "Ca')
    time, error = error_of(messages)
    assert time == 220 and isinstance(error, StructuredOutputError)
    assert error.text == '{"title": "Ca' and "ended before" in str(error)


def test_response_format_is_strict_and_leaves_tool_schemas_alone() -> None:
    sent = rxchat.response_format(Recipe)
    schema = sent["json_schema"]["schema"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["strict"] is True
    assert sent["json_schema"]["name"] == "Recipe"
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["title", "steps", "kind", "note"]
    assert schema["properties"]["note"] == {"anyOf": [{"type": "string"}, {"type": "null"}]}
    assert schema["properties"]["steps"]["items"]["additionalProperties"] is False

    @rxchat.tool
    def add(a: int, b: int | None = None) -> int:
        """Add."""
        return a + (b or 0)

    parameters = add.to_dict()["function"]["parameters"]
    assert "additionalProperties" not in parameters and parameters["required"] == ["a"]


def test_response_format_refuses_what_has_no_schema() -> None:
    with pytest.raises(ConfigurationError, match="no JSON Schema"):
        rxchat.response_format(object)


def _call(index: int, args: str, id: str | None = None) -> Message:
    return Message(tool_calls=(ToolCall(index=index, id=id, function=FunctionCall(
        "f" if id else None, args)),))


def test_partial_arguments_emits_each_calls_value_as_it_grows() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_hot_observable(
        on_next(210, _call(0, "", "c1")), on_next(220, _call(0, '{"q": "r')),
        on_next(230, _call(0, 'x"}')), on_next(240, _call(1, "{}", "c2")), on_completed(250),
    )
    results = scheduler.start(lambda: xs.pipe(rxops.partial_arguments(),
                                               ops.map(copy.deepcopy)))
    assert values(results.messages) == [
        (220, ("c1", {"q": "r"})), (230, ("c1", {"q": "rx"})), (240, ("c2", {})),
    ]


@dataclass
class Node:
    name: str
    children: list[Node]


def test_a_dataclass_that_contains_itself_is_refused_with_a_way_out() -> None:
    with pytest.raises(ConfigurationError, match="contains itself"):
        rxchat.response_format(Node)


@pytest.mark.parametrize("disposed", [205, 215, 225, 235])
def test_disposing_at_any_moment_ends_the_source_subscription_there(disposed: int) -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_hot_observable(
        *[on_next(210 + 10 * i, Message(content=p))
          for i, p in enumerate(['[{"a": 1}', ", 2", ", 3]"])],
        on_completed(250),
    )
    results = scheduler.start(lambda: xs.pipe(rxops.json_items(schema={"type": "array"})),
                              disposed=disposed)
    assert xs.subscriptions == [subscribe(200, disposed)]
    assert all(m.time < disposed for m in results.messages)


def test_everything_works_without_pydantic() -> None:
    import subprocess
    import sys

    program = (
        "import sys; sys.modules['pydantic'] = None  # import pydantic now fails\n"
        "import dataclasses, reactivex, rxchat\n"
        "from rxchat import operators as rxops\n"
        "@dataclasses.dataclass\n"
        "class A:\n    x: int\n"
        "rxchat.response_format(A)\n"
        "source = reactivex.of(rxchat.Message(content='{\"x\": 1}'))\n"
        "print(source.pipe(rxops.parsed(A)).run())\n"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.stdout.strip() == "A(x=1)", done.stderr
