"""``rxchat ask --schema`` in a real pseudo-terminal: the JSON is redrawn as it grows,
and Ctrl-C stops it, closing the stream (the server sees the disconnect)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pexpect  # type: ignore[import-untyped, unused-ignore]  # stubs: types-pexpect

from rxchat.testing import STALL, FakeServer, Reply, chunk, sse_event


def test_the_json_grows_on_the_terminal_and_ctrl_c_closes_the_stream(tmp_path: Path) -> None:
    schema = tmp_path / "trip.json"
    schema.write_text(json.dumps({"type": "object", "properties": {
        "city": {"type": "string"}, "sights": {"type": "array", "items": {"type": "string"}}}}))
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
           "TERM": "xterm-256color", "LANG": "C.UTF-8", "PYTHONUNBUFFERED": "1",
           "RXCHAT_API_KEY": "sk-pty-secret"}
    with FakeServer() as server:
        pieces = ['{"city": "Par', 'is", "sights": ["Lou', 'vre\\u001b[2J"']
        server.enqueue(Reply((*[sse_event(chunk(content=p)) for p in pieces], STALL)))
        child = pexpect.spawn(
            sys.executable, ["-m", "rxchat", "ask", "--no-log", "--base-url", server.base_url,
                             "--model", "m", "--schema", str(schema), "go"],
            env=env, encoding="utf-8", timeout=20, dimensions=(40, 120),
        )
        child.expect_exact('"city": "Paris"')
        child.expect_exact('"Louvre\\u001b[2J"')  # escaped, never a raw control sequence
        child.sendintr()
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 130
        assert server.wait_for_disconnects(1, timeout=10)
