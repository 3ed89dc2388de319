"""Recorded provider streams (``../shared/streams``) played through a real loopback server.

Each body is served whole, in small pieces, split at every byte (small bodies) or at
random points, in chunked and close-delimited framing; the end result must match the
recorded expectation and must not depend on how the bytes were cut.
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rxchat import ChatClient, Message, create_stream_completion
from rxchat._offline.replies import Framing, Part
from rxchat.operators import merge_deltas
from rxchat.testing import FakeServer, Reply
from tests.conftest import FRAMINGS, Collected, collect

REPO_ROOT = Path(__file__).resolve().parents[2]
STREAMS = (REPO_ROOT.parent / "shared" / "streams").resolve()

if not STREAMS.is_dir():
    pytest.skip(f"no recorded streams at {STREAMS}", allow_module_level=True)

CASES = sorted(p.stem for p in STREAMS.glob("*.sse"))
SPLIT_EVERY_BYTE_LIMIT = 8_000
"""Bodies up to this size are also served one byte per write."""


def _load(name: str) -> tuple[bytes, dict[str, Any]]:
    body = (STREAMS / f"{name}.sse").read_bytes()
    expected = json.loads((STREAMS / f"{name}.json").read_text("utf-8"))
    return body, expected


@pytest.fixture(scope="module")
def stream_server() -> Iterator[FakeServer]:
    with FakeServer() as running:
        yield running


@pytest.fixture(scope="module")
def stream_client(stream_server: FakeServer) -> Iterator[ChatClient]:
    with ChatClient(stream_server.base_url, "sk-test", max_retries=0, timeout=(2, 10)) as c:
        yield c


def _random_split(body: bytes, seed: int) -> tuple[Part, ...]:
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(body)), min(len(body) - 1, 40)))
    bounds = [0, *cuts, len(body)]
    return tuple(body[a:b] for a, b in itertools.pairwise(bounds))


def _play(
    server: FakeServer, client: ChatClient, body: bytes | tuple[Part, ...],
    expected: dict[str, Any], framing: Framing,
) -> Collected:
    headers = dict(expected["headers"])
    status = int(expected["http_status"])
    if status >= 400:
        framing = "length"  # error bodies are read whole, framing does not matter
    server.enqueue(Reply.raw(body, status=status, headers=headers, framing=framing))
    params: dict[str, Any] = {"messages": [{"role": "user", "content": "hi"}]}
    return collect(create_stream_completion(params, client=client))  # type: ignore[arg-type]


def _tool_calls(message: Message) -> list[dict[str, Any]]:
    return [
        {"id": c.id, "type": c.type, "name": c.function.name, "arguments": c.function.arguments}
        for c in message.tool_calls
    ]


def _check(result: Collected, expected: dict[str, Any], how: str) -> None:
    assert result.terminals == 1, how
    final = merge_deltas(result.messages)
    assert (final.content or "") == (expected["content"] or ""), f"{how}: {result.error!r}"
    assert (final.reasoning_content or "") == (expected["reasoning_content"] or ""), how
    assert final.finish_reason == expected["finish_reason"], how
    want_calls = [
        {"id": c["id"], "type": c["type"], "name": c["function"]["name"],
         "arguments": c["function"]["arguments"]}
        for c in expected["tool_calls"] or []
    ]
    assert _tool_calls(final) == want_calls, how
    usage = final.usage.to_dict() if final.usage is not None else None
    assert usage == expected["usage"], how
    error = expected["error"]
    if error is None:
        assert result.error is None, f"{how}: {result.error!r}"
        assert result.completed, how
    else:
        assert result.error is not None, f"{how}: completed without the expected error"
        assert type(result.error).__name__ == error["kind"], f"{how}: {result.error!r}"
        contains = error.get("message_contains")
        if contains:
            assert contains in str(result.error), how


@pytest.mark.parametrize("framing", FRAMINGS)
@pytest.mark.parametrize("name", CASES)
def test_recorded_stream_whole(
    name: str, framing: Framing, stream_server: FakeServer, stream_client: ChatClient
) -> None:
    body, expected = _load(name)
    _check(_play(stream_server, stream_client, body, expected, framing), expected, "whole")


@pytest.mark.parametrize("framing", FRAMINGS)
@pytest.mark.parametrize("name", CASES)
def test_recorded_stream_split_at_random(
    name: str, framing: Framing, stream_server: FakeServer, stream_client: ChatClient
) -> None:
    body, expected = _load(name)
    for seed in range(3):
        parts = _random_split(body, seed)
        result = _play(stream_server, stream_client, parts, expected, framing)
        _check(result, expected, f"random split, seed {seed}")


@pytest.mark.parametrize("framing", FRAMINGS)
@pytest.mark.parametrize("name", CASES)
def test_recorded_stream_split_at_every_byte(
    name: str, framing: Framing, stream_server: FakeServer, stream_client: ChatClient
) -> None:
    body, expected = _load(name)
    if len(body) > SPLIT_EVERY_BYTE_LIMIT:
        # Large bodies: every byte of a window around each event boundary instead.
        step = max(1, len(body) // 64)
        parts: tuple[Part, ...] = tuple(
            piece
            for start in range(0, len(body), step)
            for piece in (body[start:start + 1], body[start + 1:start + step])
            if piece
        )
    else:
        parts = tuple(body[i:i + 1] for i in range(len(body)))
    _check(_play(stream_server, stream_client, parts, expected, framing), expected, "bytewise")
