"""Conversation stores: conversations that outlive the process.

* ``SQLiteStore`` keeps them in one SQLite file (by default
  ``conversations.db`` in rxchat's data directory), safe for several processes at once.
* ``PostgresStore`` keeps them in PostgreSQL, for services on several machines
  (``pip install 'rxchat[postgres]'``).
* ``attach`` writes a session's history through to a store at every commit, and
  ``load_history`` reads one back to resume it.
* ``resolve_conversation_id`` takes any unique prefix of an id, as git does.

Both stores implement ``ConversationStore`` and pass one shared test suite:

```python
store = SQLiteStore()
conversation_id = store.create(model="deepseek-chat")
store.save_messages(conversation_id, session.messages)
for summary in store.search("invoice"):
    print(summary.id, summary.title)
```
"""

from __future__ import annotations

from ._attach import StoreWriter, attach, load_history
from ._paths import DATA_DIR_VARIABLE, data_dir, default_database
from ._postgres import PostgresStore
from ._prefix import resolve_conversation_id
from ._protocol import ConversationStore
from ._records import Conversation, ConversationSummary
from ._sqlite import SQLiteStore

__all__ = [
    "DATA_DIR_VARIABLE",
    "Conversation",
    "ConversationStore",
    "ConversationSummary",
    "PostgresStore",
    "SQLiteStore",
    "StoreWriter",
    "attach",
    "data_dir",
    "default_database",
    "load_history",
    "resolve_conversation_id",
]
