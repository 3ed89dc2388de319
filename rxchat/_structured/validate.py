"""JSON Schema checks for values that are still arriving, part by part.

`SchemaChecker` is told each part of a value as the parser completes it: a container
as it opens (its type), a key as it completes (a key the schema forbids), a scalar as
it completes (type, ``enum``, ``const``), an open string as it grows (no ``enum``
value starts so), an object as it closes (``required``). Each check looks at one part
and its own schema, so the cost of validating is that of the parse. Where ``anyOf``
leaves more than one branch open for a container, the container is checked whole
when it closes.

The keywords read: ``type``, ``enum``, ``const``, ``properties``, ``required``,
``additionalProperties``, ``items``, ``prefixItems``, ``anyOf``, ``oneOf`` (as
``anyOf``), ``allOf`` and local ``$ref`` (``#/$defs/...``). Others are ignored: what
rxchat cannot check is left to the model and, for a pydantic model, to pydantic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["Mismatch", "SchemaChecker", "format_path"]

_KINDS: dict[str, tuple[str, ...]] = {
    "object": ("object",), "array": ("array",), "string": ("string",),
    "boolean": ("boolean",), "null": ("null",), "integer": ("integer", "number"),
    "number": ("number",),
}
"""Which schema ``type`` names accept a JSON kind (an integer is also a number)."""


class Mismatch(Exception):  # noqa: N818 - internal signal, turned into StructuredOutputError
    """A part that cannot fit (``path`` None: the text is not JSON)."""

    def __init__(self, message: str, path: tuple[Any, ...] | None) -> None:
        super().__init__(message)
        self.message, self.path = message, path


def format_path(path: Sequence[Any]) -> str:
    """A JSON path for messages: ``$``, ``$.items[2].name``."""
    out = ["$"]
    for part in path:
        out.append(f"[{part}]" if isinstance(part, int) else f".{part}")
    return "".join(out)


class SchemaChecker:
    """Checks the parts of one value against a JSON Schema.

    Args:
        root: The JSON Schema of the whole value.
    """

    def __init__(self, root: Mapping[str, Any]) -> None:
        self.root = root

    # -- resolving ----------------------------------------------------------------

    def resolve(self, schema: Any) -> Mapping[str, Any] | None:
        """The schema with local ``$ref`` and one-branch ``allOf`` followed."""
        for _ in range(64):
            if not isinstance(schema, Mapping):
                return None if schema is None or schema is True else {"not": {}}
            if "$ref" in schema:
                schema = self._pointer(str(schema["$ref"]))
            elif "allOf" in schema and len(schema["allOf"]) == 1 and len(schema) == 1:
                schema = schema["allOf"][0]
            else:
                return schema
        raise Mismatch("the schema's $ref chain loops", ())

    def _pointer(self, ref: str) -> Any:
        if not ref.startswith("#"):
            return None  # a remote schema: not checked here
        node: Any = self.root
        for token in filter(None, ref[1:].split("/")):
            token = token.replace("~1", "/").replace("~0", "~")
            node = node.get(token) if isinstance(node, Mapping) else None
        return node

    def _options(self, schema: Mapping[str, Any]) -> list[Mapping[str, Any] | None] | None:
        options = schema.get("anyOf", schema.get("oneOf"))
        if not isinstance(options, list):
            return None
        return [self.resolve(option) for option in options]

    # -- parts as they complete -----------------------------------------------------

    def start(self, schema: Any, kind: str, path: tuple[Any, ...]
              ) -> tuple[Mapping[str, Any] | None, Mapping[str, Any] | None]:
        """A container or string starts: check its kind.

        Returns:
            The schema its parts are checked by (None: unchecked), and a schema to
            check it by whole when it ends (when ``anyOf`` left several branches).
        """
        resolved = self.resolve(schema)
        if not resolved:
            return None, None
        options = self._options(resolved)
        if options is not None:
            fitting = [o for o in options if self.accepts(o, kind)]
            if not fitting:
                raise Mismatch(f"must be {self.describe(resolved)}, not {_a(kind)}", path)
            if len(fitting) == 1:
                return self.start(fitting[0], kind, path)
            return None, resolved
        if not self.accepts(resolved, kind):
            raise Mismatch(f"must be {self.describe(resolved)}, not {_a(kind)}", path)
        return resolved, None

    def child(self, schema: Any, key: str | int | None, path: tuple[Any, ...]) -> Any:
        """The schema of a container's part (``key`` of an object, index of an array)."""
        if not isinstance(schema, Mapping):
            return None
        if isinstance(key, str):
            properties = schema.get("properties") or {}
            if key in properties:
                return properties[key]
            extra = schema.get("additionalProperties")
            return extra if isinstance(extra, Mapping) else None
        prefix = schema.get("prefixItems")
        if isinstance(prefix, list) and isinstance(key, int) and key < len(prefix):
            return prefix[key]
        items = schema.get("items")
        return items if isinstance(items, Mapping) else None

    def key(self, schema: Any, key: str, path: tuple[Any, ...]) -> None:
        """A key completed: fail if the object's schema forbids it."""
        if not isinstance(schema, Mapping) or schema.get("additionalProperties") is not False:
            return
        properties = schema.get("properties") or {}
        if key not in properties:
            known = ", ".join(map(repr, properties)) or "none"
            raise Mismatch(f"has the field {key!r}, which the schema does not allow "
                           f"(its fields: {known})", (*path, key))

    def scalar(self, schema: Any, value: Any, kind: str, path: tuple[Any, ...]) -> None:
        """A string, number, boolean or null completed: check it whole."""
        problem = self.check(value, schema, path)
        if problem is not None:
            raise Mismatch(problem[1], problem[0])

    def prefix(self, schema: Any, text: str, path: tuple[Any, ...]) -> None:
        """An open string grew: fail when no allowed value begins with it."""
        resolved = self.resolve(schema)
        if not resolved or "anyOf" in resolved or "oneOf" in resolved:
            return
        allowed = resolved.get("enum")
        if "const" in resolved:
            allowed = [resolved["const"]]
        if isinstance(allowed, list) and not any(
            isinstance(v, str) and v.startswith(text) for v in allowed
        ):
            raise Mismatch(f"must be one of {allowed!r}; no value begins {text!r}", path)

    def finish(self, schema: Any, whole: Any, value: Any, path: tuple[Any, ...]) -> None:
        """A container closed: its required keys, or the whole check ``anyOf`` left."""
        if whole is not None:
            problem = self.check(value, whole, path)
            if problem is not None:
                raise Mismatch(problem[1], problem[0])
        elif isinstance(schema, Mapping) and isinstance(value, dict):
            missing = [k for k in schema.get("required") or () if k not in value]
            if missing:
                raise Mismatch(f"is missing the required {', '.join(map(repr, missing))}",
                               path)

    # -- whole values ---------------------------------------------------------------

    def check(self, value: Any, schema: Any, path: tuple[Any, ...] = ()
              ) -> tuple[tuple[Any, ...], str] | None:
        """Why ``value`` does not fit ``schema`` (where, and what), or None."""
        resolved = self.resolve(schema)
        if not resolved:
            return None if resolved is None or resolved == {} else (path, "is not allowed")
        options = self._options(resolved)
        if options is not None:
            problems = [self.check(value, option, path) for option in options]
            if all(p is not None for p in problems):
                return min((p for p in problems if p), key=lambda p: -len(p[0]))
        for part in resolved.get("allOf") or ():
            problem = self.check(value, part, path)
            if problem is not None:
                return problem
        if "const" in resolved and not _same(value, resolved["const"]):
            return path, f"must be {resolved['const']!r}, not {value!r}"
        if "enum" in resolved and not any(_same(value, v) for v in resolved["enum"]):
            return path, f"must be one of {resolved['enum']!r}, not {value!r}"
        if not self.accepts(resolved, _kind_of(value)):
            return path, f"must be {self.describe(resolved)}, not {_a(_kind_of(value))}"
        if isinstance(value, dict):
            return self._check_object(value, resolved, path)
        if isinstance(value, list):
            for index, item in enumerate(value):
                problem = self.check(item, self.child(resolved, index, path), (*path, index))
                if problem is not None:
                    return problem
        return None

    def _check_object(self, value: dict[str, Any], schema: Mapping[str, Any],
                      path: tuple[Any, ...]) -> tuple[tuple[Any, ...], str] | None:
        for key, item in value.items():
            try:
                self.key(schema, key, path)
            except Mismatch as forbidden:
                return forbidden.path or path, forbidden.message
            problem = self.check(item, self.child(schema, key, path), (*path, key))
            if problem is not None:
                return problem
        missing = [k for k in schema.get("required") or () if k not in value]
        if missing:
            return path, f"is missing the required {', '.join(map(repr, missing))}"
        return None

    def accepts(self, schema: Mapping[str, Any] | None, kind: str) -> bool:
        """Whether a value of JSON ``kind`` can fit ``schema`` at all."""
        if not schema:
            return True
        options = self._options(schema)
        if options is not None:
            return any(self.accepts(o, kind) for o in options)
        if "const" in schema or "enum" in schema:
            allowed = [schema["const"]] if "const" in schema else list(schema["enum"])
            if not any(kind in _KINDS[_kind_of(v)] or _kind_of(v) in _KINDS[kind]
                       for v in allowed):
                return False
        kinds = schema.get("type")
        if kinds is None:
            return True
        names = [kinds] if isinstance(kinds, str) else list(kinds)
        return any(name in _KINDS.get(kind, ()) for name in names)

    def describe(self, schema: Mapping[str, Any]) -> str:
        """What a schema wants, in words (``an object``, ``a string or null``)."""
        options = self._options(schema)
        if options is not None:
            return " or ".join(self.describe(o) if o else "anything" for o in options)
        if "enum" in schema:
            return f"one of {schema['enum']!r}"
        kinds = schema.get("type")
        if kinds is None:
            return "something else"
        names = [kinds] if isinstance(kinds, str) else list(kinds)
        return " or ".join(_a(str(n)) for n in names)


def _kind_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if value.is_integer() else "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _same(value: Any, expected: Any) -> bool:
    return value == expected and isinstance(value, bool) == isinstance(expected, bool)


def _a(kind: str) -> str:
    return {"integer": "an integer", "array": "an array", "object": "an object",
            "null": "null"}.get(kind, f"a {kind}")
