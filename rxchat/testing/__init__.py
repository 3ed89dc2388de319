"""Testing helpers: a real loopback chat server, scripted replies and marble deltas.

The server and the offline model it plays are part of the library (`rxchat serve` runs
them); this package re-exports them for tests, beside the test-only helpers.

* `FakeServer` is an OpenAI-compatible SSE server on 127.0.0.1 that plays
  `Reply` scripts and records every request; the offline model answers when
  the script is empty (``rxchat serve`` runs the same server); it serves https too,
  with a test certificate (``ssl_context=``). `Reply.raw` sends bytes as they are
  (`sse_event`, `chunk` and `DONE` build them) in a `Framing`: chunked,
  close-delimited or with a Content-Length.
* `ForwardProxy` is a forward proxy on 127.0.0.1 (``CONNECT`` and absolute-URI,
  over http or https) for clients behind a corporate proxy.
* `marble_deltas` and `ScriptedCompletion` describe delta streams in
  virtual time, for ``ChatSession(complete=..., scheduler=TestScheduler())`` tests.
"""

from __future__ import annotations

from .._offline.model import offline_answer, offline_reply, offline_tool_call
from .._offline.replies import DONE, RESET, STALL, Framing, RecordedRequest, Reply, chunk, sse_event
from .._offline.server import FakeServer, ServerEvent
from ._marbles import ScriptedCompletion, marble_deltas
from ._proxy import ForwardProxy, closed_port

__all__ = [
    "DONE",
    "RESET",
    "STALL",
    "FakeServer",
    "ForwardProxy",
    "Framing",
    "RecordedRequest",
    "Reply",
    "ScriptedCompletion",
    "chunk",
    "closed_port",
    "marble_deltas",
    "offline_answer",
    "offline_reply",
    "offline_tool_call",
    "sse_event",
    "ServerEvent",
]
