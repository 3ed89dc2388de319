"""Shared fixtures and helpers: an isolated environment, a loopback FakeServer, a blocked
network, a blocking collector with its grammar check, and polling helpers."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from reactivex import Observable
from reactivex.abc import DisposableBase

from rxchat import ChatClient, ChatCompletionParams, Message
from rxchat.testing import FakeServer, Framing

# Ctrl-C tests send SIGINT to the CLI (in this process or a child). A shell that starts
# the suite in the background (`cmd &`, nohup) makes it ignore SIGINT, and a child
# inherits that, so those tests would hang: take the default handler back.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

PARAMS: ChatCompletionParams = {"messages": [{"role": "user", "content": "hi"}]}
"""The smallest request: one user message."""

FRAMINGS: list[Framing] = ["chunked", "close"]
"""The two framings of a streamed body: chunked, and ended by closing the connection."""

ENV_VARIABLES = (
    "RXCHAT_BASE_URL",
    "RXCHAT_API_KEY",
    "SILICONFLOW_API_KEY",
    "RXCHAT_MODEL",
    # requests reads these: a developer's proxy or CA bundle must not steer the tests
    *(f"{name}_PROXY" for name in ("HTTP", "HTTPS", "ALL", "NO")),
    *(f"{name}_proxy" for name in ("http", "https", "all", "no")),
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark everything under tests/stress/ `slow` (still run by default; `-m "not slow"` skips)."""
    for item in items:
        if "stress" in item.path.parts:
            item.add_marker(pytest.mark.slow)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say how many documentation examples ran (tests/contract/test_docs.py fills the report)."""
    docs = sys.modules.get("tests.contract.test_docs")
    for line in getattr(docs, "REPORT", []):
        terminalreporter.write_line(line)


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


@pytest.fixture(scope="session")
def ca() -> Any:
    """A private certificate authority (``trustme``) for the https tests."""
    import trustme

    return trustme.CA()


@pytest.fixture(scope="session")
def ca_bundle(ca: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The private CA's certificate as a PEM file, as a user's CA bundle would be."""
    path = tmp_path_factory.mktemp("tls") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture(scope="session")
def server_tls(ca: Any) -> ssl.SSLContext:
    """A server context with a certificate for 127.0.0.1 and localhost, signed by ``ca``."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


@pytest.fixture
def tls_server(server_tls: ssl.SSLContext) -> Iterator[FakeServer]:
    """A FakeServer on https://127.0.0.1."""
    with FakeServer(ssl_context=server_tls) as running:
        yield running


def tls_client(server: FakeServer, ca_bundle: str, **kwargs: Any) -> ChatClient:
    """A client of an https FakeServer that trusts the private CA (its own session)."""
    client = ChatClient(server.base_url, "sk-test-key", **{
        "max_retries": 0, "timeout": (2.0, 10.0), **kwargs})
    client.session.verify = ca_bundle
    return client


@pytest.fixture
def blocked_network(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Fail any attempt to resolve or connect, and record it: nothing leaves the machine."""
    attempts: list[Any] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(args)
        raise OSError("network blocked by the test")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    return attempts


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll ``predicate`` every 10 ms until it holds (True) or ``timeout`` s pass (False)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def open_fds() -> int:
    """How many file descriptors this process has open."""
    return len(os.listdir("/proc/self/fd"))


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


def assert_grammar(result: Collected) -> None:
    """on_next* then exactly one terminal, never two calls at once."""
    assert result.overlaps == 0
    assert result.terminals == 1
    assert result.events[-1] in ("error", "completed")
    assert all(e == "next" for e in result.events[:-1])


@pytest.fixture(autouse=True)
def _private_data_dir(tmp_path_factory: pytest.TempPathFactory,
                      monkeypatch: pytest.MonkeyPatch) -> None:
    """No test writes conversations or input history into the real home directory."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("RXCHAT_DATA_DIR", str(home / "rxchat-data"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str | None]:
    """A PostgreSQL server's DSN for the whole session, or None (see tests/stores/_postgres.py)."""
    from tests.stores._postgres import server_dsn

    yield from server_dsn()


@pytest.fixture
def postgres_dsn(postgres_server: str | None) -> Iterator[str]:
    """A DSN whose search path is a fresh, empty schema; skips (fails in CI) without one."""
    from tests.stores._postgres import isolated_dsn, unavailable

    if postgres_server is None:
        unavailable("none was given and none could be started with .ci/pg-cluster")
    assert postgres_server is not None
    yield from isolated_dsn(postgres_server)


def threads_started_since(before: set[threading.Thread]) -> list[str]:
    """Names of the live threads that were not in ``before`` (``set(threading.enumerate())``).

    A baseline taken this way needs no settling: a thread of an earlier test that is
    still ending is in ``before``, so it is never blamed on the current test.
    """
    return [t.name for t in threading.enumerate() if t not in before and t.is_alive()]


def retry_timers() -> list[threading.Thread]:
    """The live ``threading.Timer`` threads: the default scheduler waits for a retry in one."""
    return [t for t in threading.enumerate() if isinstance(t, threading.Timer)]
