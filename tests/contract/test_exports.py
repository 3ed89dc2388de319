"""The public namespace: ``__all__`` is exactly the public names, as in httpx."""

from __future__ import annotations

import importlib
import types

import pytest

import rxchat
from rxchat import aio, errors, operators, stores, testing


@pytest.mark.parametrize(
    "module", [rxchat, aio, errors, operators, stores, testing], ids=lambda m: m.__name__
)
def test_all_is_exactly_the_public_names(module: types.ModuleType) -> None:
    declared = set(module.__all__)
    assert len(declared) == len(module.__all__), "duplicates in __all__"
    missing = sorted(name for name in declared if not hasattr(module, name))
    assert missing == []
    public = {
        name for name, value in vars(module).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
        and _defined_in(module, value)
    }
    assert sorted(public - declared) == [], "public names missing from __all__"


def _defined_in(module: types.ModuleType, value: object) -> bool:
    """Defined in the module or one of its private submodules (so re-exported by it).

    Names imported for use (``Message`` in ``rxchat.operators``, typing helpers,
    ``annotations``) are not the module's exports.
    """
    origin = getattr(value, "__module__", None)
    if not isinstance(origin, str):
        return True  # plain data defined here
    return origin == module.__name__ or origin.startswith(module.__name__ + "._")


def test_all_is_sorted_ignoring_dunders() -> None:
    names = [n for n in rxchat.__all__ if not n.startswith("__")]
    assert names == sorted(names, key=str.lower) or names == sorted(names)


def test_api_md_imports_of_the_streaming_core() -> None:
    from rxchat import (  # noqa: F401
        ChatClient,
        ChatCompletionParams,
        ChatMessage,
        Message,
        create_stream_completion,
    )
    from rxchat.errors import (  # noqa: F401
        APIConnectionError,
        APIStatusError,
        APITimeoutError,
        AuthenticationError,
        BadRequestError,
        RateLimitError,
        RxChatError,
        ServerError,
        StreamError,
        StreamInterrupted,
    )
    from rxchat.operators import accumulate, content, final_message, reasoning  # noqa: F401


@pytest.mark.parametrize("name", ["ChatSession", "ChatState"])
def test_api_md_imports_of_the_session(name: str) -> None:
    if not hasattr(importlib.import_module("rxchat"), name):
        pytest.xfail(f"rxchat.{name} is not written yet")
    assert name in rxchat.__all__


def test_api_md_imports_of_asyncio() -> None:
    from rxchat import aio as imported

    assert imported.__all__ == ["ObservableIterator", "complete", "iterate", "stream"]


def test_private_modules_do_not_leak_requests() -> None:
    assert not hasattr(rxchat, "requests")


def test_api_md_imports_of_the_stores() -> None:
    from rxchat.stores import PostgresStore, SQLiteStore  # noqa: F401


def test_api_md_imports_of_tools() -> None:
    from rxchat import Tool, ToolCall, tool  # noqa: F401
    from rxchat.errors import StepLimitError, ToolError
    from rxchat.operators import tool_calls  # noqa: F401

    assert {"Tool", "ToolCall", "tool"} <= set(rxchat.__all__)
    assert issubclass(StepLimitError, errors.RxChatError)
    assert issubclass(ToolError, errors.RxChatError)
    assert "StepLimitError" in (errors.__doc__ or "") and "ToolError" in (errors.__doc__ or "")
