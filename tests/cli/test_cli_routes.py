"""``--routes FILE``: the command line races several providers and says which answered."""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from rxchat.cli import main
from rxchat.cli._render import format_stats
from rxchat.cli._routes import NO_KEY, load_routes
from rxchat.errors import ConfigurationError
from rxchat.stores import SQLiteStore
from rxchat.testing import FakeServer, Reply, closed_port

KEY_ONE, KEY_TWO = "sk-one-secret-1111", "sk-two-secret-2222"


@pytest.fixture
def pair() -> Iterator[tuple[FakeServer, FakeServer]]:
    with FakeServer() as one, FakeServer() as two:
        yield one, two


def routes_file(tmp_path: Path, *routes: tuple[str, str, str | None], head: str = "") -> str:
    lines = [head]
    for base_url, model, key_env in routes:
        lines += ["[[route]]", f'base_url = "{base_url}"', f'model = "{model}"']
        if key_env:
            lines.append(f'api_key_env = "{key_env}"')
    path = tmp_path / "routes.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def run(*argv: str, stdin: str = "", env: Mapping[str, str] | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(list(argv), stdout=out, stderr=err, stdin=io.StringIO(stdin),
                  env=dict(env or {"ONE_KEY": KEY_ONE, "TWO_KEY": KEY_TWO}))
    return status, out.getvalue(), err.getvalue()


def test_chat_falls_back_and_names_the_route_in_the_stats_line(
    pair: tuple[FakeServer, FakeServer], tmp_path: Path
) -> None:
    one, two = pair
    one.enqueue(Reply.error(500, "down"), Reply.text("Still here."))
    two.enqueue(Reply.text("Hi Ada."))
    path = routes_file(tmp_path, (one.base_url, "model-one", "ONE_KEY"),
                       (two.base_url, "model-two", "TWO_KEY"), head="after = 5.0")
    status, out, err = run("chat", "--routes", path, "--no-log",
                           stdin="My name is Ada\nWho am I?\n")
    assert status == 0, err
    assert f"via model-two at {two.base_url}]" in out
    assert f"via model-one at {one.base_url}]" in out
    assert one.requests[0].headers["Authorization"] == f"Bearer {KEY_ONE}"
    assert two.requests[0].headers["Authorization"] == f"Bearer {KEY_TWO}"
    assert two.requests[0].json["model"] == "model-two"
    assert one.requests[1].json["messages"][-2] == {"role": "assistant", "content": "Hi Ada."}
    assert KEY_ONE not in out + err and KEY_TWO not in out + err
    assert "2 hedged routes" in out


def test_ask_with_routes_logs_the_route(
    pair: tuple[FakeServer, FakeServer], tmp_path: Path
) -> None:
    one, _ = pair
    one.enqueue(Reply.text("Hello."))
    path = routes_file(tmp_path, (f"http://127.0.0.1:{closed_port()}/v1", "m0", "ONE_KEY"),
                       (one.base_url, "m1", "TWO_KEY"))
    env = {"ONE_KEY": KEY_ONE, "TWO_KEY": KEY_TWO, "RXCHAT_DATA_DIR": str(tmp_path)}
    status, out, err = run("ask", "--routes", path, "hi", env=env)
    assert (status, out) == (0, "Hello.\n"), err
    with SQLiteStore(tmp_path / "conversations.db") as store:
        [summary] = store.list()
        reply = store.get(summary.id).messages[-1]
    assert reply.content == "Hello." and reply.route == f"m1 at {one.base_url}"


def test_every_route_failing_is_one_line_naming_each(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{closed_port()}/v1"
    path = routes_file(tmp_path, (dead, "a", "ONE_KEY"), (dead, "b", "TWO_KEY"))
    status, out, err = run("ask", "--routes", path, "hi")
    assert status != 0 and out == ""
    assert "Every route failed" in err and f"a at {dead}" in err and f"b at {dead}" in err
    assert KEY_ONE not in err and KEY_TWO not in err


def test_a_loopback_route_may_go_without_a_key_and_never_gets_another(
    pair: tuple[FakeServer, FakeServer], tmp_path: Path
) -> None:
    one, _ = pair
    path = routes_file(tmp_path, (one.base_url, "m", None))
    routes = load_routes(path, {"RXCHAT_API_KEY": "sk-elsewhere"})
    assert routes.clients[0].build_headers()["Authorization"] == f"Bearer {NO_KEY}"
    routes.close()


@pytest.mark.parametrize(("text", "message"), [
    ("", "no [[route]] tables"),
    ("[[route]]\nmodel = 'm'\n", "needs a base_url and a model"),
    ("[[route]]\nbase_url = 'https://api.example.com/v1'\nmodel = 'm'\n", "needs api_key_env"),
    ("[[route]]\nbase_url = 'https://api.example.com/v1'\nmodel = 'm'\napi_key_env = 'NOPE'\n",
     "$NOPE, which is not set"),
    ("after = 'soon'\n[[route]]\nbase_url = 'http://127.0.0.1:9/v1'\nmodel = 'm'\n", "p95"),
    ("[[route]\n", "not valid TOML"),
])
def test_a_bad_routes_file_says_what_to_fix(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "routes.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigurationError) as caught:
        load_routes(str(path), {})
    assert message in str(caught.value)


def test_a_missing_routes_file_is_a_configuration_error(tmp_path: Path) -> None:
    status, _, err = run("ask", "--routes", str(tmp_path / "nope.toml"), "hi")
    assert status != 0 and "Cannot read the routes file" in err


def test_the_stats_line_names_the_route() -> None:
    assert format_stats(None, 0.25, 0.5, "m at https://x/v1") == (
        "first token 0.25 s, via m at https://x/v1"
    )
