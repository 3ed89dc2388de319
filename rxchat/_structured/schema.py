"""What a structured reply must be: a schema from a model, a dataclass, a TypedDict or a
dict, the request's ``response_format``, and the value built at the end.

``response_format`` sends the schema in OpenAI's strict form (Structured Outputs):

```text
{"type": "object",                         {"type": "object",
 "properties": {"name": S, "note": T},  →   "properties": {"name": S,
 "required": ["name"]}                                     "note": {"anyOf": [T, null]}},
                                            "required": ["name", "note"],
                                            "additionalProperties": false}
```

Every property is required and an optional one may be null; a null the model sent
for an optional field is dropped again before the value is built, so the field's
default applies. Type hints go through the tools' schema builder
(`rxchat._tools.schema.schema_of`); tool schemas are never made strict.
"""

from __future__ import annotations

import copy
import dataclasses
import re
import types
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, Union, get_args, get_origin, get_type_hints, is_typeddict

from .._tools.schema import schema_of
from ..errors import ConfigurationError, StructuredOutputError
from .validate import Mismatch, SchemaChecker, format_path

__all__ = ["Structured", "as_structured", "response_format", "strict_schema"]

_NAME = re.compile(r"[^a-zA-Z0-9_-]")


@dataclass(frozen=True)
class Structured:
    """A schema asked for: as sent, as written, and what to build from a value.

    Attributes:
        name: The schema's name in the request.
        schema: The JSON Schema as sent (strict when ``strict``).
        written: The JSON Schema before strict mode changed it.
        strict: Whether the schema is sent in strict mode.
        target: The pydantic model or dataclass to build, or None for plain JSON.
    """

    name: str
    schema: Mapping[str, Any]
    written: Mapping[str, Any]
    strict: bool = True
    target: Any = None

    def response_format(self) -> dict[str, Any]:
        """The request's ``response_format`` field."""
        return {"type": "json_schema", "json_schema": {
            "name": self.name, "schema": copy.deepcopy(dict(self.schema)), "strict": self.strict,
        }}

    def build(self, value: Any, text: str) -> Any:
        """The value checked whole and built as the target (a model, a dataclass).

        Raises:
            StructuredOutputError: It does not fit (says where and what).
        """
        checker = SchemaChecker(self.written)
        try:
            value = _without_strict_nulls(value, self.written, checker)
            problem = checker.check(value, self.written)
        except (Mismatch, RecursionError) as exc:  # a schema whose $ref loops
            raise StructuredOutputError(
                f"The schema {self.name!r} cannot be checked: {exc}. Fix its $ref.",
                text=text) from None
        if problem is not None:
            where, what = format_path(problem[0]), problem[1]
            raise StructuredOutputError(
                f"The structured reply does not fit the schema {self.name!r}: {where} {what}. "
                "Ask again, or loosen the schema.", text=text, errors=(f"{where}: {what}",),
                path=where,
            )
        if _is_pydantic(self.target):
            return _validate_pydantic(self.target, value, text, self.name)
        if self.target is not None:
            return build_hinted(self.target, value)
        return value


def response_format(schema: Any, *, name: str | None = None, strict: bool = True
                    ) -> dict[str, Any]:
    """The request's ``response_format`` asking for JSON that fits ``schema``.

    ```python
    create_stream_completion({**params, "response_format": response_format(Recipe)})
    session.ask("a cake", response_format=Recipe)
    ```

    In strict mode (OpenAI's Structured Outputs) every object forbids other keys and
    requires every property, an optional one being nullable; rxchat drops those nulls
    again when it builds the value (`rxchat.operators.parsed`).

    Args:
        schema: A pydantic model, a dataclass, a ``TypedDict``, another type hint with
            a JSON form, or a JSON Schema dict.
        name: The schema's name in the request; by default the class's name or the
            schema's ``title`` (else ``"response"``).
        strict: Send the schema in strict mode.

    Returns:
        ``{"type": "json_schema", "json_schema": {"name", "schema", "strict"}}``.

    Raises:
        ConfigurationError: ``schema`` has no JSON Schema (the message says why).
    """
    return as_structured(schema, name=name, strict=strict).response_format()


def as_structured(schema: Any, *, name: str | None = None, strict: bool = True) -> Structured:
    """The `Structured` of a schema given in any form `response_format` takes, or of
    the dict it returns (or a `Structured` itself).

    Raises:
        ConfigurationError: ``schema`` has no JSON Schema.
    """
    if isinstance(schema, Structured):
        return schema
    if isinstance(schema, Mapping) and schema.get("type") == "json_schema":
        inner = schema.get("json_schema")
        if not isinstance(inner, Mapping) or not isinstance(inner.get("schema"), Mapping):
            raise ConfigurationError(
                "A json_schema response_format needs {'json_schema': {'name', 'schema'}}; "
                "build it with rxchat.response_format(schema)."
            )
        written = inner["schema"]
        return Structured(str(inner.get("name") or "response"), written, written,
                          bool(inner.get("strict", False)))
    target: Any = None
    if isinstance(schema, Mapping):
        written = dict(schema)
    elif _is_pydantic(schema):
        written, target = schema.model_json_schema(), schema
    else:
        try:
            written = schema_of(schema)
        except (TypeError, NameError) as exc:
            raise ConfigurationError(
                f"response_format: {exc}; pass a pydantic model, a dataclass, a TypedDict "
                "or a JSON Schema dict."
            ) from exc
        if isinstance(schema, type) and dataclasses.is_dataclass(schema):
            target = schema
    title = getattr(schema, "__name__", None) or written.get("title") or "response"
    label = _NAME.sub("_", str(name or title))[:64] or "response"
    sent = strict_schema(written) if strict else written
    return Structured(label, sent, written, strict, target)


def strict_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """``schema`` in strict mode: objects closed, every property required, optional
    ones nullable. The schema given is not changed.

    Args:
        schema: A JSON Schema.

    Returns:
        A new schema.
    """
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in ("properties", "$defs", "definitions") and isinstance(value, Mapping):
            out[key] = {k: _strict_any(v) for k, v in value.items()}
        elif key in ("items", "additionalProperties", "not") and isinstance(value, Mapping):
            out[key] = _strict_any(value)
        elif key in ("anyOf", "oneOf", "allOf", "prefixItems") and isinstance(value, list):
            out[key] = [_strict_any(v) for v in value]
        else:
            out[key] = copy.deepcopy(value)
    properties = out.get("properties")
    if isinstance(properties, dict) and properties:
        required = set(schema.get("required") or ())
        for key in properties:
            if key not in required and not SchemaChecker(out).accepts(
                SchemaChecker(out).resolve(properties[key]), "null"
            ):
                properties[key] = {"anyOf": [properties[key], {"type": "null"}]}
        out["required"] = list(properties)
        out["additionalProperties"] = False
    return out


def _strict_any(value: Any) -> Any:
    return strict_schema(value) if isinstance(value, Mapping) else copy.deepcopy(value)


def _without_strict_nulls(value: Any, schema: Any, checker: SchemaChecker) -> Any:
    """``value`` without the nulls strict mode had the model send for optional fields."""
    resolved = checker.resolve(schema)
    if not resolved:
        return value
    for option in resolved.get("anyOf") or resolved.get("oneOf") or ():
        if checker.check(value, option) is None:
            return _without_strict_nulls(value, option, checker)
    if isinstance(value, dict):
        properties = resolved.get("properties") or {}
        required = set(resolved.get("required") or ())
        return {
            key: _without_strict_nulls(item, properties.get(key), checker)
            for key, item in value.items()
            if not (item is None and key in properties and key not in required
                    and not checker.accepts(checker.resolve(properties[key]), "null"))
        }
    if isinstance(value, list):
        return [_without_strict_nulls(item, checker.child(resolved, i, ()), checker)
                for i, item in enumerate(value)]
    return value


def _is_pydantic(target: Any) -> bool:
    return isinstance(target, type) and hasattr(target, "model_json_schema") and hasattr(
        target, "model_validate")


def _validate_pydantic(model: Any, value: Any, text: str, name: str) -> Any:
    try:
        return model.model_validate(value)
    except ValueError as exc:  # pydantic.ValidationError is a ValueError
        errors = getattr(exc, "errors", None)
        listed = tuple(
            f"$.{'.'.join(map(str, e.get('loc', ())))}: {e.get('msg')}" for e in errors()
        ) if callable(errors) else (str(exc),)
        raise StructuredOutputError(
            f"The structured reply does not fit the model {name!r}: {'; '.join(listed)}. "
            "Ask again, or loosen the model.", text=text, errors=listed,
        ) from exc


def build_hinted(hint: Any, value: Any) -> Any:
    """``value`` (checked JSON) built as ``hint``: dataclasses, enums and tuples inside
    lists, dicts and optionals are constructed; everything else is kept as it is.

    Args:
        hint: A type hint (a dataclass, usually).
        value: A JSON value that fits the hint's schema.

    Returns:
        The built value.
    """
    if isinstance(hint, type) and dataclasses.is_dataclass(hint) and isinstance(value, dict):
        hints = get_type_hints(hint)
        names = {f.name for f in dataclasses.fields(hint) if f.init}
        return hint(**{k: build_hinted(hints.get(k, Any), v) for k, v in value.items()
                       if k in names})
    if isinstance(hint, type) and issubclass(hint, Enum):
        return hint(value)
    if isinstance(hint, type) and is_typeddict(hint):
        return value
    origin, args = get_origin(hint), get_args(hint)
    if origin in (list, set, frozenset) and args and isinstance(value, list):
        return origin(build_hinted(args[0], v) for v in value)
    if origin is tuple and args and isinstance(value, list):
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(build_hinted(args[0], v) for v in value)
        return tuple(build_hinted(a, v) for a, v in zip(args, value, strict=False))
    if origin is dict and len(args) == 2 and isinstance(value, dict):
        return {k: build_hinted(args[1], v) for k, v in value.items()}
    if origin is Union or origin is types.UnionType:
        for option in args:
            try:
                if SchemaChecker(schema_of(option)).check(value, schema_of(option)) is None:
                    return build_hinted(option, value)
            except TypeError:
                continue
    return value
