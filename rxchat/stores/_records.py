"""What a store keeps, and the pure rules both backends share.

``Conversation`` and ``ConversationSummary`` are the values a store returns; the
functions here turn messages into stored rows (JSON, searchable text, a digest) and
derive a conversation's title and total usage, so SQLite and PostgreSQL cannot drift
apart on what they store.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .._models import Message, Usage
from ..errors import StoreError

__all__ = [
    "EXPORT_FORMAT",
    "EXPORT_VERSION",
    "TITLE_LENGTH",
    "Conversation",
    "ConversationSummary",
    "MessageRow",
]

TITLE_LENGTH = 60
"""Longest automatic title: the first user message, whitespace collapsed, cut here."""

EXPORT_FORMAT = "rxchat.session"
"""An export is a session document, so ``ChatSession.load`` reads it as it is."""

EXPORT_VERSION = 1


@dataclass(frozen=True)
class ConversationSummary:
    """One stored conversation without its messages, as ``list`` and ``search`` give it.

    Attributes:
        id: The conversation's id.
        title: Its title: given at creation, else the first user message, shortened.
        model: The model last used in it, if known.
        created: When it was created (UTC).
        updated: When it last changed (UTC).
        message_count: How many messages it holds (the system prompt included).
        usage: Token counts summed over every reply that reported them, or None.
    """

    id: str
    title: str | None
    model: str | None
    created: datetime
    updated: datetime
    message_count: int
    usage: Usage | None


@dataclass(frozen=True)
class Conversation(ConversationSummary):
    """A stored conversation with its messages, oldest first.

    Attributes:
        messages: Every message with all its fields (reasoning, tool calls, usage).
    """

    messages: tuple[Message, ...] = ()


@dataclass(frozen=True)
class MessageRow:
    """How one message is stored: its JSON, the text that is searched, and a digest."""

    role: str
    data: str
    text: str
    digest: str

    @classmethod
    def of(cls, message: Message) -> MessageRow:
        """The stored form of ``message`` (remembered, within ``ROW_CACHE_BYTES``: a
        history is saved again and again with the same messages, and encoding them is
        most of a save's cost).

        Raises:
            StoreError: The message cannot be written as JSON (a field holds an
                object that is not JSON).
        """
        try:
            hash(message)
        except TypeError:  # an unhashable field (content as a list of parts)
            return _row_of(message)
        return _ROWS.get(message)


ROW_CACHE_BYTES = 4 << 20
"""At most this many bytes of message text are kept by the cache of stored rows."""


def _row_of(message: Message) -> MessageRow:
    try:
        data = json.dumps(message.to_dict(), ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise StoreError(
            f"A {message.role!r} message cannot be stored: {exc}; its fields must be JSON."
        ) from exc
    try:
        encoded = data.encode("utf-8")
    except UnicodeEncodeError:  # surrogates: see SURROGATES_MARK
        encoded = data.encode("utf-8", "surrogatepass")
        data = SURROGATES_MARK + encoded.decode("latin-1")
    text = "\n".join(_text(t) for t in (message.content, message.reasoning_content) if t)
    digest = hashlib.blake2b(encoded, digest_size=16).hexdigest()
    return MessageRow(storable(message.role), data, storable(text), digest)


SURROGATES_MARK = "s"
"""Starts the stored JSON of a message whose text holds surrogate code points.

UTF-8 cannot encode them and JSON's ``\\ud83d\\ude00`` escapes would be read back
as one character, so such a row holds the message's JSON encoded with
``surrogatepass`` and each byte as one character (Latin-1): exactly the code points
committed come back. Other rows are plain JSON (they start with ``{``).
"""


class _RowCache:
    """A least-recently-used map from message to row, bounded in bytes, not entries.

    A message counts its row's JSON twice (the key message holds the same text) plus
    its searchable text; one larger than an eighth of the budget is never kept.
    """

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.size = 0
        self._rows: OrderedDict[Message, tuple[MessageRow, int]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, message: Message) -> MessageRow:
        with self._lock:
            found = self._rows.get(message)
            if found is not None:
                self._rows.move_to_end(message)
                return found[0]
        row = _row_of(message)
        cost = 2 * len(row.data) + len(row.text)
        if cost > self.budget // 8:
            return row
        with self._lock:
            if message not in self._rows:
                self._rows[message] = (row, cost)
                self.size += cost
            while self.size > self.budget:
                _, (_, freed) = self._rows.popitem(last=False)
                self.size -= freed
        return row

    def clear(self) -> None:
        with self._lock:
            self._rows.clear()
            self.size = 0


_ROWS = _RowCache(ROW_CACHE_BYTES)

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(text: str) -> str:
    """``text`` as a plain column can hold it in every backend: NUL and lone
    surrogates become U+FFFD (PostgreSQL refuses NUL, UTF-8 cannot encode a
    surrogate). Only derived columns (title, searched text, model, role) go through
    this; a message's own JSON keeps every code point exactly.
    """
    if text.isascii() and "\x00" not in text:
        return text
    return _UNSTORABLE.sub("\ufffd", text)


def _text(value: object) -> str:
    """The searchable text of a content: itself, or the text of its parts."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return " ".join(p["text"] for p in value if isinstance(p, dict)
                        and isinstance(p.get("text"), str))
    return ""


def new_id() -> str:
    """A fresh conversation id: 32 hex digits, random."""
    return uuid.uuid4().hex


def now_us() -> int:
    """Microseconds since the epoch."""
    return time.time_ns() // 1000


def to_datetime(stamp_us: int) -> datetime:
    """A stored microsecond stamp as an aware UTC datetime."""
    return datetime.fromtimestamp(stamp_us / 1_000_000, tz=UTC)


def title_of(messages: Sequence[Message]) -> str | None:
    """The first user message on one line, cut to ``TITLE_LENGTH`` characters."""
    for message in messages:
        line = " ".join(_text(message.content).split()) if message.role == "user" else ""
        if line:
            line = storable(line)
            return line if len(line) <= TITLE_LENGTH else line[: TITLE_LENGTH - 1] + "…"
    return None


def total_usage(messages: Sequence[Message]) -> Usage | None:
    """The token counts of every message that has them, summed; None if none has."""
    counted = [m.usage for m in messages if m.usage is not None]
    if not counted:
        return None
    return Usage(
        prompt_tokens=sum(u.prompt_tokens for u in counted),
        completion_tokens=sum(u.completion_tokens for u in counted),
        total_tokens=sum(u.total_tokens for u in counted),
    )


def usage_json(usage: Usage | None) -> str | None:
    """``usage`` as stored (JSON), or None."""
    return None if usage is None else json.dumps(usage.to_dict())


def usage_from_json(text: str | None) -> Usage | None:
    """The stored usage column back as a ``Usage``."""
    return None if text is None else Usage.from_dict(json.loads(text))


def message_from_json(text: str) -> Message:
    """A stored message back as a ``Message``."""
    if text.startswith(SURROGATES_MARK):
        text = text[1:].encode("latin-1").decode("utf-8", "surrogatepass")
    return Message.from_dict(json.loads(text))


def changed_from(old_digests: Sequence[str], rows: Sequence[MessageRow]) -> int:
    """The first position where the stored messages and the new ones differ.

    Rows before it are kept as they are: appending a turn never rewrites the earlier
    ones; an undo or a regenerated reply replaces only the tail.
    """
    same = 0
    for old, new in zip(old_digests, rows, strict=False):
        if old != new.digest:
            break
        same += 1
    return same


def search_terms(text: str) -> list[str]:
    """The words of a search, as both backends match them (all words, any case)."""
    return re.findall(r"\w+", text.lower())


def export_document(conversation: Conversation) -> dict[str, Any]:
    """``conversation`` as a JSON-ready dict that ``ChatSession.load`` can read."""
    return {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "id": conversation.id,
        "title": conversation.title,
        "model": conversation.model,
        "created": conversation.created.isoformat(),
        "updated": conversation.updated.isoformat(),
        "usage": None if conversation.usage is None else conversation.usage.to_dict(),
        "params": {},
        "context_window": None,
        "messages": [m.to_dict() for m in conversation.messages],
    }
