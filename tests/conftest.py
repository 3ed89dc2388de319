"""Shared fixtures and helpers: an isolated environment, a loopback FakeServer, a blocked
network, a blocking collector with its grammar check, and polling helpers."""

from __future__ import annotations

import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from reactivex import Observable
from reactivex.abc import DisposableBase

from rxchat import ChatClient, ChatCompletionParams, Message
from rxchat.stores import DATA_DIR_VARIABLE, data_dir
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


@contextmanager
def rxchat_serve(env: Mapping[str, str] | None = None) -> Iterator[str]:
    """A real ``rxchat serve`` subprocess on a free loopback port (no delay); its base URL.

    It is the console script the package installs (``python -m rxchat`` where there is
    none); it is stopped with SIGINT, as a person stops it, and must exit with status 0.
    """
    command = Path(sys.executable).with_name("rxchat")
    argv = [str(command)] if command.exists() else [sys.executable, "-m", "rxchat"]
    server = subprocess.Popen([*argv, "serve", "--port", "0", "--delay", "0"],
                              env=dict(os.environ if env is None else env),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        first = server.stdout.readline()
        found = re.search(r"(http://127\.0\.0\.1:\d+/v1)", first)
        assert found, f"rxchat serve said {first!r}"
        yield found[1]
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.communicate()
    assert server.returncode == 0


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


REAL_HOME = Path(os.path.expanduser("~"))
"""The developer's home directory, read before any fixture moves ``HOME``."""

REAL_DATA_DIR = data_dir({k: v for k, v in os.environ.items() if k != DATA_DIR_VARIABLE})
"""Where rxchat would keep the developer's conversations (``RXCHAT_DATA_DIR`` aside)."""

_REAL_DATA_DIRS = tuple({REAL_DATA_DIR, data_dir()})
"""The platform's data directory and the developer's ``RXCHAT_DATA_DIR``, if set."""

_SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")
"""An open SQLite database's transient side files (another process may hold it open)."""


def rxchat_files_in(home: Path, data: Path) -> set[str]:
    """rxchat's files in a home: the data directory's tree and ``~/*rxchat*`` entries."""
    found = {str(p) for p in home.glob("*rxchat*")} if home.is_dir() else set()
    for directory in {data, *(_REAL_DATA_DIRS if home == REAL_HOME else ())}:
        if directory.is_dir():
            found |= {str(p) for p in directory.rglob("*")}
    return {name for name in found if not name.endswith(_SQLITE_COMPANIONS)}


def _touches_real_home(event: str, args: tuple[Any, ...]) -> str | None:
    """The path of an open-for-writing or SQLite connect under the real data directory."""
    if event == "open" and args and isinstance(args[0], str | Path):
        mode = args[1] if len(args) > 1 and isinstance(args[1], str) else "r"
        flags = args[2] if len(args) > 2 and isinstance(args[2], int) else 0
        writes = any(c in mode for c in "wax+") or flags & (os.O_WRONLY | os.O_RDWR)
        path = str(args[0])
    elif event == "sqlite3.connect" and args and isinstance(args[0], str | Path):
        writes, path = True, str(args[0])
    else:
        return None
    inside = any(path.startswith(str(d) + os.sep) or path == str(d) for d in _REAL_DATA_DIRS)
    return path if writes and inside else None


_AUDIT: dict[str, Any] = {"on": False, "seen": []}


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _AUDIT["on"] and (path := _touches_real_home(event, args)) is not None:
        _AUDIT["seen"].append(f"{event}: {path}")


sys.addaudithook(_audit)


@pytest.fixture(scope="session", autouse=True)
def _private_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The whole session runs with ``HOME`` and the data directory in an empty temporary
    directory, and proves at the end that no rxchat file appeared in the real home.

    Session-wide, so module fixtures (the docs test's scripts, ``rxchat serve``) and
    every subprocess see it too. In this process, opening a file for writing under the
    real data directory is recorded as it happens; for subprocesses the real home's
    rxchat files are compared before and after (other programs may use rxchat at the
    same time, so only files that appear count, not changes to existing ones).
    """
    before = rxchat_files_in(REAL_HOME, REAL_DATA_DIR)
    home = tmp_path_factory.mktemp("session-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOME", str(home))
        patch.setenv("USERPROFILE", str(home))
        patch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
        patch.setenv(DATA_DIR_VARIABLE, str(home / "rxchat-data"))
        _AUDIT["on"] = True
        try:
            yield home
        finally:
            _AUDIT["on"] = False
    appeared = sorted(rxchat_files_in(REAL_HOME, REAL_DATA_DIR) - before)
    assert not _AUDIT["seen"], f"the tests wrote into the real home: {_AUDIT['seen']}"
    assert not appeared, f"rxchat files appeared in the real home {REAL_HOME}: {appeared}"


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
