"""A value that fits a JSON Schema, made from the schema and a person's words.

The offline model answers a ``json_schema`` response format with it, so structured
output works without a key. It is no language model: a property named in the text
(``title: Lemon cake``, ``servings 4``, ``3 steps``) takes the value written there;
other strings take the text's next few words, numbers its next number, an ``enum``
the first of its values the text mentions (else its first), and each array two
items (or the count the text gives). The result always fits the schema's
``type``, ``enum``, ``const``, ``required`` and ``minItems``/``minimum``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .validate import SchemaChecker

__all__ = ["instance_of"]

_MAX_DEPTH = 6
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def instance_of(schema: Mapping[str, Any], text: str) -> Any:
    """A value fitting ``schema``, filled from ``text`` where it fits.

    Args:
        schema: A JSON Schema (local ``$ref`` are followed).
        text: The person's words.

    Returns:
        A JSON value.
    """
    return _Maker(schema, text).make(schema, "", 0)


class _Maker:
    def __init__(self, root: Mapping[str, Any], text: str) -> None:
        self.checker = SchemaChecker(root)
        self.text = text
        self.words = [w.strip(".,;:!?\"'") for w in text.split()]
        self.words = [w for w in self.words if w] or ["offline"]
        self.numbers = [float(n) for n in _NUMBER.findall(text)]
        self.next_word = self.next_number = 0

    def make(self, schema: Any, name: str, depth: int) -> Any:
        resolved = self.checker.resolve(schema) or {}
        options = resolved.get("anyOf") or resolved.get("oneOf")
        if isinstance(options, list) and options:
            chosen = [o for o in options if not self._is_null(o)] or options
            return self.make(chosen[0] if depth < _MAX_DEPTH else options[-1], name, depth + 1)
        if "const" in resolved:
            return resolved["const"]
        if isinstance(resolved.get("enum"), list) and resolved["enum"]:
            return self._choice(resolved["enum"])
        kind = resolved.get("type", "string" if "properties" not in resolved else "object")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "null")
        if depth >= _MAX_DEPTH and kind in ("object", "array"):
            return {} if kind == "object" else []
        if kind == "object":
            properties = resolved.get("properties") or {}
            return {key: self.make(sub, key, depth + 1) for key, sub in properties.items()}
        if kind == "array":
            return self._array(resolved, name, depth)
        if kind in ("integer", "number"):
            return self._number(resolved, name, kind == "integer")
        if kind == "boolean":
            return not re.search(rf"\b(?:no|not)\s+{re.escape(name)}\b", self.text, re.I)
        if kind == "null":
            return None
        return self._string(resolved, name)

    def _is_null(self, option: Any) -> bool:
        resolved = self.checker.resolve(option) or {}
        return resolved.get("type") == "null"

    def _named(self, name: str, value: str) -> str | None:
        if not name:
            return None
        label = re.escape(name).replace("_", "[_ ]")
        match = re.search(rf"\b{label}\s*(?:is|:|=)\s*({value})", self.text, re.I)
        return match.group(1).strip() if match else None

    def _choice(self, allowed: list[Any]) -> Any:
        lowered = self.text.lower()
        for value in allowed:
            if isinstance(value, str) and value.lower() in lowered:
                return value
        return allowed[0]

    def _string(self, schema: Mapping[str, Any], name: str) -> str:
        named = self._named(name, r"[^,.;\n]+")
        if named:
            return named
        start = self.next_word % len(self.words)
        self.next_word += 3
        text = " ".join((self.words * 2)[start:start + 3])
        least = schema.get("minLength")
        if isinstance(least, int) and len(text) < least:
            text = text.ljust(least, ".")
        most = schema.get("maxLength")
        return text[:most] if isinstance(most, int) else text

    def _number(self, schema: Mapping[str, Any], name: str, integer: bool) -> int | float:
        named = self._named(name, _NUMBER.pattern) or (
            self._count(name) if name else None)
        if named is not None:
            value = float(named)
        elif self.next_number < len(self.numbers):
            value = self.numbers[self.next_number]
            self.next_number += 1
        else:
            value = 1.0
        low, high = schema.get("minimum"), schema.get("maximum")
        if isinstance(low, (int, float)):
            value = max(value, float(low))
        if isinstance(high, (int, float)):
            value = min(value, float(high))
        return int(value) if integer else value

    def _count(self, name: str) -> str | None:
        match = re.search(rf"\b(\d+)\s+{re.escape(name)}", self.text, re.I)
        return match.group(1) if match else None

    def _array(self, schema: Mapping[str, Any], name: str, depth: int) -> list[Any]:
        count = self._count(name) if name else None
        size = min(int(count), 10) if count else 2
        least, most = schema.get("minItems"), schema.get("maxItems")
        if isinstance(least, int):
            size = max(size, least)
        if isinstance(most, int):
            size = min(size, most)
        prefix = schema.get("prefixItems")
        if isinstance(prefix, list):
            return [self.make(s, name, depth + 1) for s in prefix]
        item = name[:-1] if name.endswith("s") else name
        return [self.make(schema.get("items") or {}, item, depth + 1) for _ in range(size)]
