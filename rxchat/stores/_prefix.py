"""Conversation ids by any unique prefix, as git takes commit ids.

Ids are 32 hex digits: nobody types them. ``resolve_conversation_id`` turns what was
typed into the one stored id that starts with it, or says that none or several do.
"""

from __future__ import annotations

import string
import sys

from ..errors import AmbiguousConversationIdError, ConversationNotFoundError
from ._protocol import ConversationStore
from ._sql import SQLStore

__all__ = ["resolve_conversation_id"]

_CANDIDATES = AmbiguousConversationIdError.SHOWN + 1
"""Enough ids to name the shown candidates and know there are more."""


def resolve_conversation_id(store: ConversationStore, given: str) -> str:
    """The id of the one stored conversation whose id is, or starts with, ``given``.

    Args:
        store: The store to look in.
        given: A whole id, or any prefix of one (hex digits, any case; surrounding
            spaces are ignored).

    Returns:
        The full id.

    Raises:
        ConversationNotFoundError: No conversation's id starts with ``given`` (or
            ``given`` is empty).
        AmbiguousConversationIdError: Several do; the message lists them.
        StoreError: The store could not be read.
    """
    prefix = given.strip().lower()
    if not prefix or not set(prefix) <= set(string.hexdigits.lower()):
        if prefix:  # not an id rxchat made; another store's ids are matched whole
            return given
        raise ConversationNotFoundError(given)
    found = _starting_with(store, prefix)
    if prefix in found:
        return prefix
    if not found:
        raise ConversationNotFoundError(given)
    if len(found) > 1:
        raise AmbiguousConversationIdError(given, tuple(found))
    return found[0]


def _starting_with(store: ConversationStore, prefix: str) -> list[str]:
    """Up to `_CANDIDATES` ids starting with ``prefix`` (hex digits only), sorted: an
    id equal to ``prefix`` comes first."""
    if isinstance(store, SQLStore):
        # hex digits need no LIKE escaping; ids are stored in lower case
        with store._transaction(write=False) as tx:
            rows = tx.query(
                "SELECT id FROM rxchat_conversations WHERE id LIKE ? ORDER BY id LIMIT ?",
                (prefix + "%", _CANDIDATES),
            )
        return [str(row[0]) for row in rows]
    ids = sorted(s.id for s in store.list(limit=sys.maxsize) if s.id.startswith(prefix))
    return ids[:_CANDIDATES]
