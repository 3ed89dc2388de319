"""rxchat: streaming chat completions as ReactiveX Observables.

``create_stream_completion(params)`` POSTs an OpenAI-style request with
``stream: true`` and emits each ``choices[i].delta`` as a `Message`;
``ChatSession`` keeps a whole conversation's context. See ``docs/`` for the guides.
"""

from __future__ import annotations

from ._client import ChatClient
from ._models import ChatCompletionParams, ChatMessage, FunctionCall, Message, ToolCall, Usage
from ._offline.client import offline_client
from ._routing import hedge
from ._session.session import ChatSession
from ._session.state import ChatState
from ._stream import create_stream_completion
from ._structured.schema import response_format
from ._tools.tools import Tool, tool

__version__ = "0.1.0"

__all__ = [
    "ChatClient",
    "ChatCompletionParams",
    "ChatMessage",
    "ChatSession",
    "ChatState",
    "FunctionCall",
    "Message",
    "Tool",
    "ToolCall",
    "Usage",
    "__version__",
    "create_stream_completion",
    "hedge",
    "offline_client",
    "response_format",
    "tool",
]
