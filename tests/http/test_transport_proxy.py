"""Through a forward proxy on loopback (rxchat.testing.ForwardProxy): plain http
(absolute-URI), https (CONNECT) and an https proxy (TLS inside TLS); dispose before
headers and mid-stream closes the socket at once; a dead proxy is named as such; a
session's own proxies win over the environment."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator

import pytest
import requests

from rxchat import ChatClient, create_stream_completion
from rxchat.errors import APIConnectionError
from rxchat.testing import STALL, FakeServer, ForwardProxy, Reply, chunk, closed_port
from tests.conftest import PARAMS, collect, open_fds, subscribe, wait_until

ROUTES = ["http-via-http-proxy", "https-via-http-proxy", "https-via-https-proxy"]


@pytest.fixture(params=ROUTES)
def route(
    request: pytest.FixtureRequest, server_tls: ssl.SSLContext, ca_bundle: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[FakeServer, ForwardProxy, ChatClient]]:
    """A server, a proxy in front of it (set in the environment) and a client."""
    target_tls = request.param.startswith("https")
    proxy_tls = request.param.endswith("https-proxy")
    with FakeServer(ssl_context=server_tls if target_tls else None) as server, \
            ForwardProxy(ssl_context=server_tls if proxy_tls else None) as proxy:
        monkeypatch.setenv("HTTPS_PROXY" if target_tls else "HTTP_PROXY", proxy.url)
        client = ChatClient(server.base_url, "sk-test-key", max_retries=0,
                            timeout=(5.0, 30.0))
        client.session.verify = ca_bundle  # trusts the proxy's certificate too
        with client:
            yield server, proxy, client


def test_a_stream_goes_through_the_proxy(
    route: tuple[FakeServer, ForwardProxy, ChatClient],
) -> None:
    server, proxy, client = route
    for _ in range(2):
        server.enqueue(Reply.text("proxied reply"))
        assert collect(create_stream_completion(PARAMS, client=client)).content == "proxied reply"
    assert proxy.connections == 1  # the connection to the proxy was reused
    method = "CONNECT" if server.base_url.startswith("https") else "POST"
    assert proxy.requests[0].startswith(method)


@pytest.mark.parametrize("stage", ["before-headers", "mid-stream"])
def test_dispose_through_the_proxy_closes_the_socket_at_once(
    route: tuple[FakeServer, ForwardProxy, ChatClient], stage: str
) -> None:
    server, proxy, client = route
    if stage == "mid-stream":
        server.enqueue(Reply.events([chunk(content="x")], done=False).then(STALL))
    else:
        server.enqueue(Reply.text("never").after(STALL))
    threads, fds = threading.active_count(), open_fds()
    result, subscription = subscribe(create_stream_completion(PARAMS, client=client))
    if stage == "mid-stream":
        assert result.first.wait(5)
    else:
        assert server.wait_for_requests(1)
    subscription.dispose()  # must not raise, whatever socket type sits underneath
    # The read timeout is 30 s and the server is silent: only the dispose closes.
    assert server.wait_for_disconnects(1, timeout=5), "the proxy still holds the request"
    assert server.events_of(0)[-1] == "disconnect"
    assert wait_until(lambda: proxy.open_tunnels == 0)
    assert wait_until(lambda: threading.active_count() <= threads)
    assert wait_until(lambda: open_fds() <= fds)
    assert result.terminals == 0


def test_a_proxy_that_refuses_is_named_in_the_error(
    tls_server: FakeServer, ca_bundle: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = f"http://user:secret@127.0.0.1:{closed_port()}"
    monkeypatch.setenv("HTTPS_PROXY", dead)
    with ChatClient(tls_server.base_url, "sk-test-key", max_retries=0) as client:
        client.session.verify = ca_bundle
        result = collect(create_stream_completion(PARAMS, client=client))
    assert isinstance(result.error, APIConnectionError)
    message = str(result.error)
    assert f"through the proxy http://127.0.0.1:{dead.rsplit(':', 1)[1]}" in message
    assert "HTTPS_PROXY" in message and "refused" in message
    assert "secret" not in message and "urllib3" not in message


def test_a_callers_session_proxies_win_over_the_environment(
    tls_server: FakeServer, ca_bundle: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{closed_port()}")
    tls_server.enqueue(Reply.text("via my proxy"))
    with ForwardProxy() as proxy:
        session = requests.Session()
        session.verify = ca_bundle
        session.proxies = {"https": proxy.url}
        with ChatClient(tls_server.base_url, "sk-test-key", session=session,
                        max_retries=0) as client:
            result = collect(create_stream_completion(PARAMS, client=client))
    assert result.content == "via my proxy", result.error
    assert proxy.requests == [f"CONNECT 127.0.0.1:{tls_server.port}"]


def test_the_proxy_forwards_only_to_loopback() -> None:
    with ForwardProxy() as proxy:
        session = requests.Session()
        session.proxies = {"http": proxy.url}
        response = session.get("http://192.0.2.1/", timeout=5)  # TEST-NET: never reached
    assert response.status_code == 403
