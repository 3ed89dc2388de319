"""An incremental JSON parser: text in piece by piece, one value that grows in place.

`JSONStream.feed` resumes where the last piece stopped: it keeps the parse state (a
stack of open containers, the state of the grammar, an unfinished token's few
characters), never the text already read, so the work per piece is the work of that
piece. The value is built in place:

```text
feed('{"a": [1, 2')    value {"a": [1]}          2 may go on: not shown yet
feed('3], "b": "he')   value {"a": [1, 23], "b": "he"}
feed('llo"}')          value {"a": [1, 23], "b": "hello"}   done
```

Keys and items only appear, strings only grow; a container appears when it opens, a
string when its quote does, a key with its value's first visible part, and a number
or `true`/`false`/`null` only when complete (RFC 8259 grammar, section 2-7: nothing
beyond it is accepted). An open string is decoded as it arrives, except an escape
that is not complete yet (`\\u00` or a high surrogate waiting for its pair).

A `checker` (`rxchat._structured.validate.SchemaChecker`) is told each part as it
completes, so a value that cannot fit a schema fails at that part.
"""

from __future__ import annotations

import json.decoder
import re
from collections.abc import Callable
from typing import Any

from .._wire.text import has_surrogates, valid_text
from ..errors import StructuredOutputError
from .validate import Mismatch, SchemaChecker, format_path

__all__ = ["MAX_DEPTH", "JSONStream"]

# The standard library's string decoder (C, strict): public in json.decoder, untyped.
scanstring: Callable[[str, int], tuple[str, int]] = json.decoder.scanstring  # type: ignore[attr-defined]

MAX_DEPTH = 512
"""Containers nested deeper than this are refused (a runaway reply, not data)."""

_VALUE, _KEY_OR_CLOSE, _KEY, _COLON, _COMMA_OR_CLOSE, _ITEM_OR_CLOSE, _END = range(7)
_VALUE_STATES = (_VALUE, _ITEM_OR_CLOSE)

_SPACE = re.compile(r"[ \t\n\r]*")
_STRING_BODY = re.compile(r'(?:[^"\\\x00-\x1f]+|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*')
_OPEN_ESCAPE = re.compile(r"\\(?:u[0-9a-fA-F]{0,3})?")
_HIGH_SURROGATE = re.compile(r"\\u[dD][89abAB][0-9a-fA-F]{2}")
_NUMBER_RUN = re.compile(r"[-+0-9.eE]+")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?")
_WORDS = {"t": ("true", True), "f": ("false", False), "n": ("null", None)}


class _Frame:
    """One open container: where it is, its schema, and the key being filled."""

    __slots__ = ("container", "deferred", "is_object", "items", "key", "path", "schema")

    def __init__(self, container: Any, path: tuple[Any, ...], schema: Any, deferred: Any,
                 items: bool) -> None:
        self.container = container
        self.is_object = isinstance(container, dict)
        self.key: str | None = None
        self.path, self.schema, self.deferred, self.items = path, schema, deferred, items


class JSONStream:
    """Parses one JSON value from pieces of text, keeping the value built so far.

    Args:
        checker: Validates each part as it completes; None checks nothing.
        items_at: The path of the array whose elements are collected in `items` as
            they complete (``()`` the top-level array, ``("key",)`` the array under
            a top-level key), or None.

    Attributes:
        value: The value so far (None until something is visible); containers are
            updated in place.
        started: Whether anything of the value is visible yet.
        done: Whether the value is complete.
        items: Completed elements of the `items_at` array not taken yet.
        found_items: Whether the `items_at` array has opened.
    """

    def __init__(self, checker: SchemaChecker | None = None,
                 items_at: tuple[Any, ...] | None = None) -> None:
        self.value: Any = None
        self.started = self.done = False
        self.items: list[Any] = []
        self.found_items = False
        self._checker, self._items_at = checker, items_at
        self._stack: list[_Frame] = []
        self._expect = _VALUE
        self._tail = ""  # an unfinished token (number, word, escape): re-read with the next piece
        self._pieces: list[str] = []
        self._string: list[str] | None = None  # decoded parts of the open string
        self._raw = ""  # the open string's text not decoded yet
        self._string_is_key = False
        self._string_schema: Any = None
        self._string_path: tuple[Any, ...] = ()
        self._shown = 0  # the length of the open string as shown
        self._surrogates = False
        self._changed = False

    @property
    def changed(self) -> bool:
        """Whether the last `feed` or `close` changed the visible value."""
        return self._changed

    @property
    def text(self) -> str:
        """All the text fed so far."""
        return "".join(self._pieces)

    def feed(self, text: str) -> bool:
        """Read one more piece of text.

        Args:
            text: The next piece.

        Returns:
            Whether the visible value changed.

        Raises:
            StructuredOutputError: The text is not JSON, or a completed part does not
                fit the schema.
        """
        self._pieces.append(text)
        buffer = self._tail + text if self._tail else text
        self._tail = ""
        self._changed = False
        try:
            self._read(buffer)
            if self._string is not None:
                self._grow_string()
        except Mismatch as problem:
            raise self._error(problem.message, problem.path) from None
        return self._changed

    def close(self) -> Any:
        """End of text: finish a trailing number and check the value is complete.

        Returns:
            The whole value.

        Raises:
            StructuredOutputError: The text ended before the value was complete.
        """
        tail, self._tail = self._tail, ""
        self._changed = False
        try:
            if tail and self._expect == _VALUE and not self._stack and tail[0] in "-0123456789":
                self._number(tail)
            elif not self.started:
                raise Mismatch("the reply held no JSON value", None)
            elif tail or not self.done:
                raise Mismatch("the reply ended before the JSON value was complete", None)
        except Mismatch as problem:
            raise self._error(problem.message, problem.path, ended=True) from None
        return self.value

    # -- the grammar -----------------------------------------------------------------

    def _read(self, buffer: str) -> None:  # one loop over the grammar's tokens
        i, end = 0, len(buffer)
        while i < end:
            if self._string is not None:
                i = self._string_body(buffer, i)
                continue
            i = _SPACE.match(buffer, i).end()  # type: ignore[union-attr]
            if i == end:
                return
            char, expect = buffer[i], self._expect
            if char == '"':
                self._open_string(expect)
                i += 1
            elif char == "{" or char == "[":
                if expect not in _VALUE_STATES:
                    self._unexpected(char)
                self._open({} if char == "{" else [])
                i += 1
            elif char == "}" or char == "]":
                self._close(char)
                i += 1
            elif char == ",":
                if expect != _COMMA_OR_CLOSE:
                    self._unexpected(char)
                self._expect = _KEY if self._stack[-1].is_object else _VALUE
                i += 1
            elif char == ":":
                if expect != _COLON:
                    self._unexpected(char)
                self._expect = _VALUE
                i += 1
            elif char in "-0123456789":
                if expect not in _VALUE_STATES:
                    self._unexpected(char)
                run = _NUMBER_RUN.match(buffer, i).end()  # type: ignore[union-attr]
                if run == end:
                    self._tail = buffer[i:]
                    return
                self._number(buffer[i:run])
                i = run
            elif char in _WORDS:
                word, value = _WORDS[char]
                if expect not in _VALUE_STATES:
                    self._unexpected(char)
                if buffer.startswith(word, i):
                    self._scalar(value, "boolean" if value is not None else "null")
                    i += len(word)
                elif word.startswith(buffer[i:]):
                    self._tail = buffer[i:]
                    return
                else:
                    self._unexpected(buffer[i:i + len(word)])
            else:
                self._unexpected(char)

    def _unexpected(self, found: str) -> None:
        wanted = {
            _VALUE: "a value", _KEY_OR_CLOSE: "a key or '}'", _KEY: "a key in quotes",
            _COLON: "':'", _COMMA_OR_CLOSE: "',' or the closing bracket",
            _ITEM_OR_CLOSE: "a value or ']'", _END: "nothing after the JSON value",
        }[self._expect]
        raise Mismatch(f"the reply is not JSON: expected {wanted}, found {found!r}", None)

    def _path(self) -> tuple[Any, ...]:
        if not self._stack:
            return ()
        top = self._stack[-1]
        return (*top.path, top.key if top.is_object else len(top.container))

    def _child_schema(self) -> Any:
        checker = self._checker
        if checker is None:
            return None
        if not self._stack:
            return checker.root
        top = self._stack[-1]
        return checker.child(top.schema, top.key if top.is_object else len(top.container),
                             self._path())

    def _place(self, value: Any) -> None:
        """Show a value that just became visible (a scalar, or a container opening)."""
        if self._stack:
            top = self._stack[-1]
            if top.is_object:
                top.container[top.key] = value
            else:
                top.container.append(value)
        else:
            self.value, self.started = value, True
        self._changed = True

    def _completed(self, value: Any) -> None:
        """A value is complete: collect it as an item, move the grammar on."""
        if self._stack:
            top = self._stack[-1]
            if top.items:
                self.items.append(value)
            self._expect = _COMMA_OR_CLOSE
        else:
            self._expect, self.done = _END, True

    def _scalar(self, value: Any, kind: str) -> None:
        if self._checker is not None:
            self._checker.scalar(self._child_schema(), value, kind, self._path())
        self._place(value)
        self._completed(value)

    def _number(self, token: str) -> None:
        match = _NUMBER.fullmatch(token)
        if match is None:
            raise Mismatch(f"the reply is not JSON: {token!r} is not a number", None)
        if match.group(1) is None and match.group(2) is None:
            try:
                number = int(token)
            except ValueError:  # more digits than Python converts (sys.int_info)
                raise Mismatch(
                    f"the reply holds an integer of {len(token)} digits, too long to read",
                    None,
                ) from None
            self._scalar(number, "integer")
        else:
            self._scalar(float(token), "number")

    def _open(self, container: dict[str, Any] | list[Any]) -> None:
        if len(self._stack) >= MAX_DEPTH:
            raise Mismatch(f"the JSON is nested deeper than {MAX_DEPTH} levels", None)
        path = self._path()
        schema = deferred = None
        if self._checker is not None:
            kind = "object" if isinstance(container, dict) else "array"
            schema, deferred = self._checker.start(self._child_schema(), kind, path)
        self._place(container)
        items = self._items_at is not None and path == self._items_at and isinstance(
            container, list)
        self.found_items = self.found_items or items
        self._stack.append(_Frame(container, path, schema, deferred, items))
        self._expect = _KEY_OR_CLOSE if isinstance(container, dict) else _ITEM_OR_CLOSE

    def _close(self, char: str) -> None:
        top = self._stack[-1] if self._stack else None
        if top is None or top.is_object != (char == "}") or self._expect not in (
            _KEY_OR_CLOSE if top.is_object else _ITEM_OR_CLOSE, _COMMA_OR_CLOSE
        ):
            self._unexpected(char)
        assert top is not None
        self._stack.pop()
        if self._checker is not None:
            self._checker.finish(top.schema, top.deferred, top.container, top.path)
        self._completed(top.container)

    # -- strings ---------------------------------------------------------------------

    def _open_string(self, expect: int) -> None:
        if expect in (_KEY_OR_CLOSE, _KEY):
            self._string_is_key = True
        elif expect in _VALUE_STATES:
            self._string_is_key = False
            self._string_path = self._path()
            if self._checker is not None:
                self._string_schema = self._child_schema()
                self._checker.start(self._string_schema, "string", self._string_path)
            self._place("")
        else:
            self._unexpected('"')
        self._string, self._raw, self._shown = [], "", 0
        self._surrogates = False  # the open string holds a surrogate code point

    def _string_body(self, buffer: str, i: int) -> int:
        j = _STRING_BODY.match(buffer, i).end()  # type: ignore[union-attr]
        if j < len(buffer) and buffer[j] == '"':
            self._raw += buffer[i:j]
            self._end_string()
            return j + 1
        if j == len(buffer) or _OPEN_ESCAPE.fullmatch(buffer, j):
            self._raw += buffer[i:j]
            self._tail = buffer[j:]
            return len(buffer)
        found = buffer[j:j + 2] if buffer[j] == "\\" else buffer[j]
        raise Mismatch(f"the reply is not JSON: {found!r} cannot be inside a string", None)

    def _decoded(self, raw: str) -> str:
        return scanstring(raw + '"', 0)[0] if "\\" in raw else raw

    def _end_string(self) -> None:
        parts, raw = self._string, self._raw
        assert parts is not None
        # Valid Unicode, as every text rxchat hands out: an escaped or split pair
        # joined, a lone surrogate U+FFFD.
        text = valid_text("".join(parts) + self._decoded(raw))
        self._string, self._raw = None, ""
        if self._string_is_key:
            top = self._stack[-1]
            if self._checker is not None:
                self._checker.key(top.schema, text, top.path)
            top.key, self._expect = text, _COLON
            return
        if self._checker is not None:
            self._checker.scalar(self._string_schema, text, "string", self._string_path)
        self._set_string(text)
        self._completed(text)

    def _grow_string(self) -> None:
        """Show the open value string as far as it is decoded."""
        raw = self._raw
        if self._string_is_key or not raw:
            return
        held = ""
        last = raw.rfind("\\u")
        if last >= 0 and last == len(raw) - 6 and _HIGH_SURROGATE.fullmatch(raw, last) and (
            _escapes_before(raw, last) % 2 == 0
        ):
            raw, held = raw[:last], raw[last:]  # its pair may come in the next piece
        parts = self._string
        assert parts is not None
        if raw:
            piece = self._decoded(raw)
            self._surrogates = self._surrogates or has_surrogates(piece)
            parts.append(piece)
            if len(parts) > 1:
                parts[:] = ["".join(parts)]
        self._raw = held
        text = parts[0] if parts else ""
        if self._surrogates:
            # Shown as valid Unicode; a high surrogate at the end waits for its pair.
            text = valid_text(text, keep_open=True)
            if text and "\ud800" <= text[-1] <= "\udbff":
                text = text[:-1]
        if self._checker is not None:
            self._checker.prefix(self._string_schema, text, self._string_path)
        self._set_string(text)

    def _set_string(self, text: str) -> None:
        if len(text) == self._shown:  # strings only grow: same length, same text
            return
        self._shown = len(text)
        if self._stack:
            top = self._stack[-1]
            if top.is_object:
                top.container[top.key] = text
            else:
                top.container[-1] = text
        else:
            self.value = text
        self._changed = True

    def _error(self, message: str, path: tuple[Any, ...] | None, *, ended: bool = False
               ) -> StructuredOutputError:
        where = "$" if path is None else format_path(path)
        what = "failed" if path is None else f"does not fit at {where}"
        advice = ("Ask again; a reply cut off by its length needs a larger max_tokens."
                  if ended else "The stream was stopped there: ask again, or loosen the schema.")
        return StructuredOutputError(
            f"The structured reply {what}: {message}. {advice}", text=self.text,
            errors=(f"{where}: {message}",), path=None if path is None else where,
        )


def _escapes_before(raw: str, index: int) -> int:
    count = 0
    while index - count - 1 >= 0 and raw[index - count - 1] == "\\":
        count += 1
    return count
