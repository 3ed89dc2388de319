"""``rxchat chat --tool module:function``: tools in the chat, each call shown and approved."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

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


MYTOOLS = '''
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b
'''


def test_the_console_script_finds_a_tool_module_in_the_current_directory(
    tmp_path: Path,
) -> None:
    """As docs/cli.md shows it: ``rxchat chat --tool mytools:add`` next to mytools.py."""
    (tmp_path / "mytools.py").write_text(MYTOOLS, encoding="utf-8")
    script = Path(sys.executable).with_name("rxchat")
    if not script.exists():
        pytest.skip("the rxchat console script is not installed next to this Python")
    done = subprocess.run(
        [str(script), "chat", "--offline", "--no-log", "--tool", "mytools:add", "--yes"],
        input='add {"a": 2, "b": 3}\n', cwd=tmp_path, capture_output=True,
        text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "The add tool returned: 5." in done.stdout


def test_a_module_found_nowhere_says_where_it_was_looked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", os.getcwd())])
    result = run("chat", "--tool", "mytools_not_here:add", stdin="hi\n", env={})
    assert result.status == 2
    (line,) = [line for line in result.err.splitlines() if "cannot import" in line]
    assert "cannot import 'mytools_not_here'" in line
    assert f"looked in the current directory ({tmp_path})" in line and "PYTHONPATH" in line
    (tmp_path / "mytools_here.py").write_text(MYTOOLS, encoding="utf-8")
    found = run("chat", "--tool", "mytools_here:add", "--yes", stdin='add {"a": 1, "b": 1}\n',
                env={})
    assert found.status == 0, found.err
    assert "The add tool returned: 2." in found.out


def test_an_import_error_inside_the_module_is_not_blamed_on_the_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))  # the folder is added to a copy
    (tmp_path / "broken_tools.py").write_text("import no_such_dependency_xyz\n")
    result = run("chat", "--tool", "broken_tools:add", stdin="hi\n", env={})
    assert result.status == 2 and "no_such_dependency_xyz" in result.err
    assert "current directory" not in result.err
