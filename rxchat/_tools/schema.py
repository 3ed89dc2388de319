"""JSON Schema for tools: from Python type hints, and a check of values against it.

``schema_of`` maps the hints a tool may use:

```text
str → {"type": "string"}        int → {"type": "integer"}     float → {"type": "number"}
bool → {"type": "boolean"}      list[X] / tuple[X, ...] → {"type": "array", "items": X}
dict / dict[str, X] → {"type": "object"}     Literal["a", "b"] → {"enum": ["a", "b"]}
Enum subclass → {"enum": [its values]}      Optional[X] / X | None → {"anyOf": [X, null]}
Any (or no hint) → {}   (anything)
a dataclass / TypedDict → {"type": "object", "properties": ..., "required": [...]}
```

``check_value`` validates the subset of JSON Schema those produce (``type``, ``enum``,
``properties``, ``required``, ``items``, ``anyOf``, ``additionalProperties: false``),
which is also what hand-written tool schemas mostly use; other keywords are ignored,
so a schema the model understands is never rejected here.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from enum import Enum
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints, is_typeddict

__all__ = ["check_value", "schema_of"]

_SCALARS: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean"}


def schema_of(hint: Any) -> dict[str, Any]:
    """The JSON Schema of values of a type hint.

    Args:
        hint: A type hint.

    Returns:
        Its JSON Schema.

    Raises:
        TypeError: The hint has no JSON form (the message names it).
    """
    if hint is Any:
        return {}
    if hint in _SCALARS:
        return {"type": _SCALARS[hint]}
    if hint is type(None):
        return {"type": "null"}
    if isinstance(hint, type) and issubclass(hint, Enum):
        return {"enum": [member.value for member in hint]}
    if isinstance(hint, type) and (dataclasses.is_dataclass(hint) or is_typeddict(hint)):
        return _record_schema(hint)
    origin, args = get_origin(hint), get_args(hint)
    if hint in (list, tuple, set, frozenset) or origin in (list, set, frozenset, Sequence):
        return {"type": "array", **({"items": schema_of(args[0])} if args else {})}
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return {"type": "array", "items": schema_of(args[0])}
        return {"type": "array", "prefixItems": [schema_of(a) for a in args]}
    if hint is dict or origin in (dict, Mapping):
        if len(args) == 2 and args[1] is not Any:
            return {"type": "object", "additionalProperties": schema_of(args[1])}
        return {"type": "object"}
    if origin is Literal:
        return {"enum": list(args)}
    if origin is Union or origin is types.UnionType:
        options = [schema_of(a) for a in args]
        return options[0] if len(options) == 1 else {"anyOf": options}
    raise TypeError(f"the type {hint!r} has no JSON Schema")


_BUILDING: ContextVar[frozenset[type]] = ContextVar("_BUILDING", default=frozenset())
"""The record types whose schema is being built (a type inside itself is refused)."""


def _record_schema(cls: type) -> dict[str, Any]:
    """A dataclass's or TypedDict's object schema: a property per field."""
    building = _BUILDING.get()
    if cls in building:
        raise TypeError(f"the type {cls.__name__} contains itself, which has no inline JSON "
                        "Schema here; pass a pydantic model or a JSON Schema dict with $defs")
    token = _BUILDING.set(building | {cls})
    try:
        return _fields_schema(cls)
    finally:
        _BUILDING.reset(token)


def _fields_schema(cls: type) -> dict[str, Any]:
    hints = get_type_hints(cls)
    if dataclasses.is_dataclass(cls):
        fields = [f for f in dataclasses.fields(cls) if f.init]
        names = [f.name for f in fields]
        required = [f.name for f in fields if f.default is dataclasses.MISSING
                    and f.default_factory is dataclasses.MISSING]
    else:
        names = list(hints)
        required = [n for n in names if n in getattr(cls, "__required_keys__", names)]
    schema: dict[str, Any] = {
        "type": "object", "properties": {n: schema_of(hints.get(n, Any)) for n in names},
    }
    if required:
        schema["required"] = required
    return schema


def check_value(value: Any, schema: Mapping[str, Any], path: str) -> str | None:
    """Why `value` does not fit `schema`, or None when it does.

    Args:
        value: A JSON value.
        schema: A JSON Schema.
        path: How to name `value` in the message (e.g. `"arguments"`).

    Returns:
        A message naming the offending part, or None.
    """
    if "anyOf" in schema:
        problems = [check_value(value, option, path) for option in schema["anyOf"]]
        if all(p is not None for p in problems):
            return "; or ".join(p for p in problems if p)
        return None
    if "enum" in schema and value not in schema["enum"]:
        return f"{path} must be one of {schema['enum']!r}, not {value!r}"
    kind = schema.get("type")
    if kind is not None and not _has_type(value, kind):
        return f"{path} must be {_a(kind)}, not {_json_name(value)}"
    if isinstance(value, dict):
        return _check_object(value, schema, path)
    if isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        for number, item in enumerate(value):
            problem = check_value(item, schema["items"], f"{path}[{number}]")
            if problem is not None:
                return problem
    return None


def _check_object(value: dict[str, Any], schema: Mapping[str, Any], path: str) -> str | None:
    properties: Mapping[str, Any] = schema.get("properties") or {}
    missing = [name for name in schema.get("required") or () if name not in value]
    if missing:
        return f"{path} is missing the required {', '.join(map(repr, missing))}"
    extra = schema.get("additionalProperties", True)
    for key, item in value.items():
        if key in properties:
            problem = check_value(item, properties[key], f"{path}.{key}")
        elif extra is False and properties:
            known = ", ".join(map(repr, properties))
            problem = f"{path} has an unknown field {key!r} (the fields are {known})"
        elif isinstance(extra, Mapping):
            problem = check_value(item, extra, f"{path}.{key}")
        else:
            problem = None
        if problem is not None:
            return problem
    return None


def _has_type(value: Any, kind: str | Sequence[str]) -> bool:
    if not isinstance(kind, str):
        return any(_has_type(value, k) for k in kind)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    checks: dict[str, type | tuple[type, ...]] = {
        "string": str, "boolean": bool, "array": list, "object": dict, "null": type(None),
    }
    expected = checks.get(kind)
    return expected is None or isinstance(value, expected)


def _a(kind: str | Sequence[str]) -> str:
    if not isinstance(kind, str):
        return " or ".join(_a(k) for k in kind)
    return {"integer": "an integer", "array": "an array", "object": "an object",
            "null": "null"}.get(kind, f"a {kind}")


def _json_name(value: Any) -> str:
    if value is None:
        return "null"
    for kind in ("boolean", "integer", "number", "string", "array", "object"):
        if _has_type(value, kind):
            return f"{_a(kind)} ({value!r})" if kind != "object" else "an object"
    return type(value).__name__
