"""HTTPS for real, on loopback with a private CA (``trustme``): both framings, dispose
mid-stream, before headers and during a stalled handshake, an untrusted certificate,
and a caller's session settings winning over ``REQUESTS_CA_BUNDLE``."""

from __future__ import annotations

import pickle
import socket
import ssl
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from rxchat import ChatClient, create_stream_completion
from rxchat.errors import APIConnectionError
from rxchat.testing import STALL, FakeServer, Framing, Reply, chunk
from tests.conftest import (
    FRAMINGS,
    PARAMS,
    collect,
    open_fds,
    subscribe,
    tls_client,
    wait_until,
)


@pytest.mark.parametrize("framing", FRAMINGS)
def test_a_stream_over_https(
    tls_server: FakeServer, ca_bundle: str, framing: Framing
) -> None:
    tls_server.enqueue(Reply.text("secure words here", pieces=3, framing=framing))
    with tls_client(tls_server, ca_bundle) as client:
        result = collect(create_stream_completion(PARAMS, client=client))
    assert result.completed and result.content == "secure words here"
    assert tls_server.requests[0].headers["Authorization"] == "Bearer sk-test-key"


@pytest.mark.parametrize("stage", ["mid-stream", "before-headers"])
def test_dispose_over_https_closes_the_socket_at_once(
    tls_server: FakeServer, ca_bundle: str, stage: str
) -> None:
    if stage == "mid-stream":
        tls_server.enqueue(Reply.events([chunk(content="x")], done=False).then(STALL))
    else:
        tls_server.enqueue(Reply.text("never").after(STALL))
    with tls_client(tls_server, ca_bundle, timeout=(5.0, 30.0)) as client:
        threads, fds = threading.active_count(), open_fds()
        result, subscription = subscribe(create_stream_completion(PARAMS, client=client))
        if stage == "mid-stream":
            assert result.first.wait(5)
        else:
            assert tls_server.wait_for_requests(1)
        subscription.dispose()
        # The read timeout is 30 s and the server is silent: only the dispose closes.
        assert tls_server.wait_for_disconnects(1, timeout=5)
        expected = ["request", "disconnect"] if stage == "before-headers" else [
            "request", "headers", "write", "disconnect"]
        assert tls_server.events_of(0) == expected
        assert wait_until(lambda: threading.active_count() <= threads)
        assert wait_until(lambda: open_fds() <= fds)
    assert result.terminals == 0


@pytest.fixture
def silent_tls_listener() -> Iterator[socket.socket]:
    """A listening socket that accepts TCP connections and never answers a handshake."""
    with socket.create_server(("127.0.0.1", 0), backlog=8) as listener:
        listener.settimeout(10)
        yield listener


def test_dispose_during_a_stalled_tls_handshake_closes_at_once(
    silent_tls_listener: socket.socket, ca_bundle: str
) -> None:
    port = int(silent_tls_listener.getsockname()[1])
    client = ChatClient(f"https://127.0.0.1:{port}/v1", "sk-test-key",
                        max_retries=0, timeout=(20.0, 20.0))
    client.session.verify = ca_bundle
    with client:
        threads, fds = threading.active_count(), open_fds()
        result, subscription = subscribe(create_stream_completion(PARAMS, client=client))
        accepted, _ = silent_tls_listener.accept()
        with accepted:
            accepted.settimeout(10)
            assert accepted.recv(1)[:1] == b"\x16"  # a TLS handshake record: the ClientHello
            assert "rxchat-send" in [t.name for t in threading.enumerate()], (
                "a send thread should be in the handshake"
            )
            subscription.dispose()
            # The handshake would wait 20 s: an end of file within the guard is the dispose.
            while accepted.recv(4096):
                pass
        assert wait_until(lambda: threading.active_count() <= threads)
        assert wait_until(lambda: open_fds() <= fds)
    assert result.terminals == 0


def test_an_untrusted_certificate_is_not_retried_and_says_what_to_do(
    tls_server: FakeServer,
) -> None:
    # The client trusts only the system CAs, not the private test CA.
    with ChatClient(tls_server.base_url, "sk-test-key", max_retries=2) as client:
        result = collect(create_stream_completion(PARAMS, client=client))
    assert isinstance(result.error, APIConnectionError)
    assert not result.error.retryable
    assert not pickle.loads(pickle.dumps(result.error)).retryable
    message = str(result.error)
    assert "certificate of 127.0.0.1 is not trusted" in message
    assert "REQUESTS_CA_BUNDLE" in message and "verify" in message
    assert "urllib3" not in message and "HTTPSConnectionPool" not in message
    assert tls_server.connections == 1 and tls_server.requests == []


def test_a_callers_session_verify_wins_over_requests_ca_bundle(
    tls_server: FakeServer, ca_bundle: str, monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
) -> None:
    import trustme

    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(other))  # a CA that did not sign it
    session = requests.Session()
    session.verify = ca_bundle
    tls_server.enqueue(Reply.text("trusted"))
    with ChatClient(tls_server.base_url, "sk-test-key", session=session,
                    max_retries=0) as client:
        assert collect(create_stream_completion(PARAMS, client=client)).content == "trusted"


def test_requests_ca_bundle_is_used_when_the_session_says_nothing(
    tls_server: FakeServer, ca_bundle: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", ca_bundle)
    tls_server.enqueue(Reply.text("from the environment"))
    with ChatClient(tls_server.base_url, "sk-test-key", max_retries=0) as client:
        result = collect(create_stream_completion(PARAMS, client=client))
    assert result.content == "from the environment"


def test_a_callers_client_certificate_is_sent(
    ca: Any, ca_bundle: str, tmp_path: Any
) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    context.verify_mode = ssl.CERT_REQUIRED  # mutual TLS, as some gateways require
    ca.configure_trust(context)
    pem = tmp_path / "client.pem"
    ca.issue_cert("client@example.test").private_key_and_cert_chain_pem.write_to_path(str(pem))
    session = requests.Session()
    session.verify, session.cert = ca_bundle, str(pem)
    with FakeServer(ssl_context=context) as server:
        server.enqueue(Reply.text("mutual"))
        with ChatClient(server.base_url, "sk-test-key", session=session,
                        max_retries=0) as client:
            assert collect(create_stream_completion(PARAMS, client=client)).content == "mutual"
