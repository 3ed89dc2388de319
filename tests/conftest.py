"""Shared fixtures: an isolated environment, a loopback FakeServer and a blocking collector."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from reactivex import Observable
from reactivex.abc import DisposableBase

from rxchat import ChatClient, Message
from rxchat.testing import FakeServer

ENV_VARIABLES = (
    "RXCHAT_BASE_URL",
    "RXCHAT_API_KEY",
    "SILICONFLOW_API_KEY",
    "RXCHAT_MODEL",
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's real keys or endpoints."""
    for name in ENV_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with FakeServer() as running:
        yield running


@pytest.fixture
def client(server: FakeServer) -> Iterator[ChatClient]:
    with ChatClient(server.base_url, "sk-test-key", max_retries=0, timeout=(2.0, 10.0)) as c:
        yield c


@dataclass
class Collected:
    """Everything one subscription received, recorded from the reader thread."""

    messages: list[Message] = field(default_factory=list)
    error: BaseException | None = None
    completed: bool = False
    terminals: int = 0
    events: list[str] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)
    first: threading.Event = field(default_factory=threading.Event)
    overlaps: int = 0
    _busy: threading.Lock = field(default_factory=threading.Lock)

    def on_next(self, message: Message) -> None:
        self._enter()
        self.messages.append(message)
        self.events.append("next")
        self.first.set()
        self._busy.release()

    def on_error(self, error: Exception) -> None:
        self._enter()
        self.error = error
        self.terminals += 1
        self.events.append("error")
        self._busy.release()
        self.done.set()

    def on_completed(self) -> None:
        self._enter()
        self.completed = True
        self.terminals += 1
        self.events.append("completed")
        self._busy.release()
        self.done.set()

    def _enter(self) -> None:
        if not self._busy.acquire(blocking=False):
            self.overlaps += 1
            self._busy.acquire()

    @property
    def content(self) -> str:
        return "".join(m.content or "" for m in self.messages)

    @property
    def reasoning(self) -> str:
        return "".join(m.reasoning_content or "" for m in self.messages)


def collect(source: Observable[Message], timeout: float = 10.0) -> Collected:
    """Subscribe, wait for the terminal notification (failing the test if none comes)."""
    result = Collected()
    source.subscribe(result.on_next, result.on_error, result.on_completed)
    assert result.done.wait(timeout), "the stream did not terminate in time"
    return result


def subscribe(source: Observable[Message]) -> tuple[Collected, DisposableBase]:
    """Subscribe without waiting; returns the collector and the disposable."""
    result = Collected()
    disposable = source.subscribe(result.on_next, result.on_error, result.on_completed)
    return result, disposable
