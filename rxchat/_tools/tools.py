"""Tools: Python functions the model may call, described by a JSON Schema.

`@tool` (or `Tool.from_function`) reads a function's signature and docstring once:

```python
@tool
def weather(city: str, unit: Literal["C", "F"] = "C") -> str:
    '''The current weather in a city.

    Args:
        city: The city's name.
        unit: Celsius or Fahrenheit.
    '''
```

gives the OpenAI ``tools`` entry ``{"type": "function", "function": {"name": "weather",
"description": "The current weather in a city.", "parameters": {"type": "object",
"properties": {"city": {...}, "unit": {"enum": ["C", "F"], ...}}, "required":
["city"]}}}``. Type hints map as `rxchat._tools.schema` says; a parameter with a default is
optional. The arguments a model sends are checked against the schema before the
function is called, so a bad call becomes an error message the model can read.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, TypeVar, get_type_hints, overload

from ..errors import ConfigurationError
from .schema import check_value, schema_of

__all__ = ["Tool", "ToolFunction", "tool", "tool_table"]

ToolFunction = Callable[..., Any]
"""A tool's function: plain, `async def`, or returning an Observable (result: its last value)."""

_F = TypeVar("_F", bound=ToolFunction)


@dataclass(frozen=True)
class Tool:
    """A function the model may call, with its name, description and JSON Schema.

    Calling a `Tool` calls its function, so a decorated function still works as before.

    Attributes:
        function: What runs: a plain function, an `async def` function, or a function
            returning an Observable (the result is the Observable's last value).
        name: The name the model calls it by.
        description: What it does, for the model.
        parameters: The JSON Schema of its keyword arguments (an object schema).
    """

    function: ToolFunction
    name: str
    description: str = ""
    parameters: Mapping[str, Any] = field(
        default_factory=lambda: {"type": "object", "properties": {}}
    )

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the function itself."""
        return self.function(*args, **kwargs)

    @classmethod
    def from_function(
        cls,
        function: ToolFunction,
        *,
        name: str | None = None,
        description: str | None = None,
        schema: Mapping[str, Any] | None = None,
    ) -> Tool:
        """A tool built from a function's signature, type hints and docstring.

        Args:
            function: The function.
            name: The tool's name; the function's `__name__` by default.
            description: What it does; the docstring's summary by default.
            schema: The parameters' JSON Schema, used as given instead of the one
                built from the type hints.

        Returns:
            The tool.

        Raises:
            ConfigurationError: A parameter's type hint has no JSON Schema (say which),
                or the function takes `*args`.
        """
        summary, documented = _parse_docstring(inspect.getdoc(function) or "")
        tool_name = name or getattr(function, "__name__", "")
        if not tool_name or tool_name == "<lambda>":
            raise ConfigurationError("A tool needs a name: pass tool(name=...) for a lambda.")
        parameters = dict(schema) if schema is not None else _parameters(
            function, tool_name, documented
        )
        return cls(function, tool_name, summary if description is None else description,
                   parameters)

    def to_dict(self) -> dict[str, Any]:
        """The entry of the OpenAI `tools` request field."""
        function: dict[str, Any] = {"name": self.name, "parameters": dict(self.parameters)}
        if self.description:
            function["description"] = self.description
        return {"type": "function", "function": function}

    def arguments(self, text: str) -> dict[str, Any]:
        """The keyword arguments of a call, parsed from its JSON and checked.

        Args:
            text: The call's `function.arguments` (empty means no arguments).

        Returns:
            The arguments, with `Enum` parameters converted to their members.

        Raises:
            ValueError: The text is not a JSON object fitting the schema (the
                message says where).
        """
        try:
            value = json.loads(text) if text.strip() else {}
        except json.JSONDecodeError as exc:
            raise ValueError(f"the arguments are not valid JSON ({exc})") from None
        problem = check_value(value, self.parameters, "arguments")
        if problem is not None:
            raise ValueError(problem)
        return _enum_members(self.function, value)


@overload
def tool(function: _F, /) -> Tool: ...


@overload
def tool(
    *, name: str | None = None, description: str | None = None,
    schema: Mapping[str, Any] | None = None,
) -> Callable[[ToolFunction], Tool]: ...


def tool(
    function: ToolFunction | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    schema: Mapping[str, Any] | None = None,
) -> Tool | Callable[[ToolFunction], Tool]:
    """Make a function a `Tool`: `@tool`, or `@tool(name=..., description=..., schema=...)`.

    Args:
        function: The function (when used bare, as `@tool`).
        name: The tool's name; the function's name by default.
        description: What it does; the docstring's summary line by default.
        schema: The parameters' JSON Schema, instead of the one from the type hints.

    Returns:
        The `Tool`, or a decorator making one.
    """
    if function is not None:
        return Tool.from_function(function, name=name, description=description, schema=schema)
    return lambda f: Tool.from_function(f, name=name, description=description, schema=schema)


def tool_table(tools: Iterable[Tool | ToolFunction]) -> dict[str, Tool]:
    """The tools by name (functions made `Tool`s).

    Raises:
        ConfigurationError: Two tools have one name, or a function cannot be a tool.
    """
    table: dict[str, Tool] = {}
    for value in tools:
        made = value if isinstance(value, Tool) else Tool.from_function(value)
        if made.name in table:
            raise ConfigurationError(
                f"Two tools are named {made.name!r}; give one another name with tool(name=...)."
            )
        table[made.name] = made
    return table


def _parameters(
    function: ToolFunction, name: str, documented: Mapping[str, str]
) -> dict[str, Any]:
    signature = inspect.signature(function)
    try:
        hints = get_type_hints(function)
    except Exception as exc:  # an annotation that does not resolve
        raise ConfigurationError(f"Tool {name!r}: its type hints do not resolve ({exc}).") from exc
    properties: dict[str, Any] = {}
    required: list[str] = []
    for parameter in signature.parameters.values():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            raise ConfigurationError(
                f"Tool {name!r}: *{parameter.name} cannot be described to the model; "
                "give it named parameters, or pass schema=."
            )
        hint = hints.get(parameter.name, Any)
        try:
            prop = schema_of(hint)
        except TypeError as exc:
            raise ConfigurationError(
                f"Tool {name!r}, parameter {parameter.name!r}: {exc}; pass schema=."
            ) from None
        if parameter.name in documented:
            prop = {**prop, "description": documented[parameter.name]}
        if parameter.default is parameter.empty:
            required.append(parameter.name)
        elif _jsonable(parameter.default):
            prop = {**prop, "default": _plain(parameter.default)}
        properties[parameter.name] = prop
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


def _parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """The summary (first paragraph) and the Google-style `Args:` descriptions."""
    summary = " ".join(doc.split("\n\n", 1)[0].split())
    args: dict[str, str] = {}
    lines = doc.splitlines()
    inside, current, indent = False, "", 0
    for line in lines:
        stripped = line.strip()
        if stripped in ("Args:", "Arguments:", "Parameters:"):
            inside, indent = True, len(line) - len(line.lstrip())
            continue
        if not inside or not stripped:
            continue
        depth = len(line) - len(line.lstrip())
        if depth <= indent:  # the next section
            break
        head, colon, rest = stripped.partition(":")
        if colon and " " not in head.split("(")[0].strip() and depth <= indent + 4:
            current = head.split("(")[0].strip().lstrip("*")
            args[current] = rest.strip()
        elif current:
            args[current] = f"{args[current]} {stripped}".strip()
    return summary, args


def _enum_members(function: ToolFunction, value: dict[str, Any]) -> dict[str, Any]:
    try:
        hints = get_type_hints(function)
    except Exception:
        return value
    out = dict(value)
    for key, item in value.items():
        hint = hints.get(key)
        if isinstance(hint, type) and issubclass(hint, Enum):
            out[key] = hint(item)
    return out


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(_plain(value))
    except (TypeError, ValueError):
        return False
    return True
