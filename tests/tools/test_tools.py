"""`rxchat.tool` / `rxchat.Tool`: JSON Schema from hints and docstrings, argument checks."""

from __future__ import annotations

import enum
from typing import Any, Literal, Optional

import pytest
from reactivex.testing import TestScheduler

from rxchat import ChatSession, FunctionCall, Tool, ToolCall, tool
from rxchat._tools.run import ToolRunner, result_text
from rxchat._tools.schema import check_value, schema_of
from rxchat.errors import ConfigurationError


class Unit(enum.Enum):
    CELSIUS = "C"
    FAHRENHEIT = "F"


@tool
def forecast(
    city: str,
    days: int = 3,
    unit: Unit = Unit.CELSIUS,
    detail: Literal["short", "long"] = "short",
    hours: Optional[list[float]] = None,  # noqa: UP045 - Optional is part of the contract
    alerts: bool | None = None,
    extra: dict[str, Any] | None = None,
) -> str:
    """The weather forecast for a city.

    Looks it up somewhere.

    Args:
        city: The city's name,
            in English.
        days: How many days ahead.
        unit (Unit): Celsius or Fahrenheit.

    Returns:
        The forecast.
    """
    return f"{city} {days} {unit.value} {detail} {hours} {alerts} {extra}"


def test_the_schema_comes_from_the_hints_and_the_docstring() -> None:
    assert forecast.name == "forecast"
    assert forecast.description == "The weather forecast for a city."
    assert forecast.to_dict() == {"type": "function", "function": {
        "name": "forecast",
        "description": "The weather forecast for a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "The city's name, in English."},
                "days": {"type": "integer", "description": "How many days ahead.",
                         "default": 3},
                "unit": {"enum": ["C", "F"], "description": "Celsius or Fahrenheit.",
                         "default": "C"},
                "detail": {"enum": ["short", "long"], "default": "short"},
                "hours": {"anyOf": [{"type": "array", "items": {"type": "number"}},
                                    {"type": "null"}], "default": None},
                "alerts": {"anyOf": [{"type": "boolean"}, {"type": "null"}], "default": None},
                "extra": {"anyOf": [{"type": "object"}, {"type": "null"}], "default": None},
            },
            "required": ["city"],
        },
    }}


def test_a_tool_is_still_callable_and_arguments_are_checked_and_converted() -> None:
    assert forecast("Oslo") == "Oslo 3 C short None None None"
    args = forecast.arguments('{"city": "Oslo", "unit": "F", "hours": [1.5, 2]}')
    assert args == {"city": "Oslo", "unit": Unit.FAHRENHEIT, "hours": [1.5, 2]}
    with pytest.raises(ValueError, match="missing the required 'city'"):
        forecast.arguments("")  # no text is no arguments


@pytest.mark.parametrize(("text", "problem"), [
    ('{"city": ', "not valid JSON"),
    ("[1]", "arguments must be an object, not an array"),
    ("{}", "missing the required 'city'"),
    ('{"city": 5}', "arguments.city must be a string, not an integer (5)"),
    ('{"city": "x", "days": true}', "arguments.days must be an integer"),
    ('{"city": "x", "unit": "K"}', "arguments.unit must be one of ['C', 'F']"),
    ('{"city": "x", "hours": ["a"]}', "arguments.hours[0] must be a number"),
])
def test_arguments_that_do_not_fit_say_where(text: str, problem: str) -> None:
    with pytest.raises(ValueError) as caught:
        forecast.arguments(text)
    assert problem in str(caught.value)


def test_explicit_name_description_and_schema_override() -> None:
    schema = {"type": "object", "properties": {"q": {"type": "string"}},
              "required": ["q"], "additionalProperties": False}

    @tool(name="search_web", description="Search.", schema=schema)
    def search(**kwargs: Any) -> str:
        return str(kwargs)

    assert isinstance(search, Tool) and search.name == "search_web"
    assert search.to_dict()["function"] == {
        "name": "search_web", "description": "Search.", "parameters": schema}
    with pytest.raises(ValueError, match="unknown field 'x'"):
        search.arguments('{"q": "a", "x": 1}')


def test_functions_that_cannot_be_described_are_refused_with_a_reason() -> None:
    def many(*items: str) -> None:
        """Varargs."""

    def odd(x: complex) -> None:
        """A complex number."""

    with pytest.raises(ConfigurationError, match=r"\*items"):
        tool(many)
    with pytest.raises(ConfigurationError, match=r"'x'.*complex.*schema="):
        tool(odd)
    with pytest.raises(ConfigurationError, match="name"):
        tool(lambda: None)
    with pytest.raises(ConfigurationError, match="Two tools are named 'forecast'"):
        ChatSession(tools=[forecast, forecast])


def test_schema_of_the_remaining_hints() -> None:
    assert schema_of(Any) == {}
    assert schema_of(tuple[int, ...]) == {"type": "array", "items": {"type": "integer"}}
    assert schema_of(tuple[int, str]) == {
        "type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}]}
    assert schema_of(dict) == {"type": "object"}
    assert schema_of(dict[str, int]) == {
        "type": "object", "additionalProperties": {"type": "integer"}}
    assert schema_of(list) == {"type": "array"}
    assert check_value({"a": "x"}, schema_of(dict[str, int]), "v") == (
        "v.a must be an integer, not a string ('x')")
    assert check_value(None, {"type": ["string", "null"]}, "v") is None


def test_results_become_text() -> None:
    assert result_text("plain") == "plain"
    assert result_text({"t": 1.5, "ok": True}) == '{"t": 1.5, "ok": true}'
    assert result_text(None) == "null"
    assert result_text(Unit.CELSIUS) == '"Unit.CELSIUS"'


@pytest.mark.parametrize("approve", [None, lambda call: True], ids=["plain", "approved"])
def test_a_call_stopped_before_its_worker_starts_is_never_made(approve: Any) -> None:
    """A cancel can land between the session starting a call and its worker running."""
    scheduler = TestScheduler()
    made: list[int] = []
    finished: list[Any] = []

    @tool
    def act(n: int) -> int:
        """Record that the tool ran."""
        made.append(n)
        return n

    runner = ToolRunner({"act": act}, approve, scheduler)
    call = ToolCall(id="c1", function=FunctionCall("act", '{"n": 1}'))
    runner.start(call, lambda content, error: finished.append(content)).dispose()
    scheduler.start()
    assert (made, finished) == ([], [])
    # the same call, not stopped, is made and reported once
    runner.start(call, lambda content, error: finished.append((content, error)))
    scheduler.start()
    assert made == [1] and finished == [("1", None)]
