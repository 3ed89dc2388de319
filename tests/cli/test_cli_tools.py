"""``rxchat chat --tool module:function``: tools in the chat, each call shown and approved."""

from __future__ import annotations

from rxchat.testing import FakeServer, Reply
from tests.cli.test_cli import fake, run

__all__ = ["fake"]

ADD = "tests.cli.tools_for_cli:add"


def test_with_yes_a_named_tool_runs_and_the_call_is_shown(fake: FakeServer) -> None:
    result = run("chat", "--tool", ADD, "--tool", "tests.cli.tools_for_cli:loud", "--yes",
                 stdin='add {"a": 2, "b": 3}\nshout {"text": "hi"}\n', env={})
    assert result.status == 0, result.err
    assert '  ↳ add({"a": 2, "b": 3}) → 5\nThe add tool returned: 5.' in result.out
    assert '  ↳ shout({"text": "hi"}) → HI\nThe shout tool returned: HI.' in result.out
    assert "? [y/N]" not in result.out


def test_each_call_is_asked_first_and_a_no_declines_it(fake: FakeServer) -> None:
    fake.enqueue(Reply.tool_calls([{"id": "c1", "name": "add", "arguments": '{"a": 1, "b": 1}'},
                                   {"id": "c2", "name": "add", "arguments": '{"a": 2, "b": 2}'}]),
                 Reply.text("One ran."))
    result = run("chat", "--base-url", fake.base_url, "--tool", ADD,
                 stdin="add twice\ny\nn\n")
    assert result.status == 0, result.err
    assert result.out.count("? [y/N]") == 2
    assert '  ↳ add({"a": 1, "b": 1}) → 2' in result.out
    assert '  ↳ add({"a": 2, "b": 2}) → The user declined' in result.out
    tools = [(m["tool_call_id"], m["content"]) for m in fake.requests[1].messages
             if m["role"] == "tool"]
    assert tools[0] == ("c1", "2") and "declined" in tools[1][1]
    assert fake.requests[0].json["tools"][0]["function"]["name"] == "add"


def test_a_tool_that_cannot_be_loaded_is_a_usage_error(fake: FakeServer) -> None:
    for spec, words in [("nocolon", "module:function"),
                        ("no_such_module_xyz:f", "cannot import"),
                        ("tests.cli.tools_for_cli:NOT_A_FUNCTION", "no function")]:
        result = run("chat", "--tool", spec, stdin="hi\n", env={})
        assert result.status == 2 and words in result.err, (spec, result.err)
        assert "Traceback" not in result.err
