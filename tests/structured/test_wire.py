"""The structured operators over real HTTP on loopback: items arrive while the server
is still writing, and a reply that cannot fit closes the socket before the rest is sent.
Time comes from the server's writes (it stalls until the client goes away)."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any, Literal

from reactivex import operators as ops

import rxchat
from rxchat import ChatClient, ChatSession, create_stream_completion
from rxchat import operators as rxops
from rxchat.errors import StructuredOutputError
from rxchat.testing import STALL, FakeServer, Reply, chunk, sse_event

PARAMS: Any = {"messages": [{"role": "user", "content": "hi"}]}


def _body(*pieces: str, then_stall: bool = True) -> Reply:
    parts: list[Any] = [sse_event(chunk(role="assistant", content=""))]
    parts += [sse_event(chunk(content=p)) for p in pieces]
    if then_stall:
        parts.append(STALL)  # nothing more until the client disconnects
    return Reply(tuple(parts))


def test_items_arrive_before_the_stream_ends(server: FakeServer, client: ChatClient) -> None:
    server.enqueue(_body('[{"n": 1}, ', '{"n": 2}, {"n"'))
    seen: list[Any] = []
    two = threading.Event()

    def on_item(item: Any) -> None:
        seen.append(item)
        if len(seen) == 2:
            two.set()

    subscription = create_stream_completion(PARAMS, client=client).pipe(
        rxops.json_items()).subscribe(on_item)
    assert two.wait(10), "the items did not arrive while the server was stalled"
    assert seen == [{"n": 1}, {"n": 2}]
    subscription.dispose()
    assert server.wait_for_disconnects(1, timeout=10)


def test_fail_fast_closes_the_socket_before_the_rest_is_sent(
    server: FakeServer, client: ChatClient
) -> None:
    schema = {"type": "object", "properties": {"kind": {"enum": ["cake", "bread"]}},
              "additionalProperties": False}
    # the server stalls after the offending value: only a client that gives up ends it
    server.enqueue(_body('{"kind": "pie', '", "rest": "never sent"}'))
    failed = threading.Event()
    errors: list[Exception] = []

    def on_error(error: Exception) -> None:
        errors.append(error)
        failed.set()

    create_stream_completion(PARAMS, client=client).pipe(
        rxops.partial_json(schema)).subscribe(on_error=on_error)
    assert failed.wait(10)
    assert isinstance(errors[0], StructuredOutputError) and errors[0].path == "$.kind"
    assert server.wait_for_disconnects(1, timeout=10), "the socket stayed open"


def test_parsed_over_http_with_the_bytes_split_everywhere(
    server: FakeServer, client: ChatClient
) -> None:
    text = json.dumps({"title": "Crème brûlée 🍮", "n": 12, "tags": ["a\\b", "\u2028"]})
    server.enqueue(Reply.text(text, pieces=len(text)).split(1))  # one byte per write
    result = create_stream_completion(PARAMS, client=client).pipe(rxops.parsed(
        {"type": "object"})).run()
    assert result == json.loads(text)


@dataclass
class City:
    name: str
    kind: Literal["town", "city"]
    population: int


def test_session_asks_one_turn_with_a_response_format(server: FakeServer, client: ChatClient
                                                      ) -> None:
    session = ChatSession(client)
    try:
        value = session.ask("Name: Lyon, a city of population 500000",
                            response_format=City).pipe(rxops.parsed(City)).run()
        assert value == City("Lyon", "city", 500000)
        session.ask("and now plain text").pipe(ops.to_list()).run()
        first, second = server.requests[-2:]
        assert first.json["response_format"] == rxchat.response_format(City)
        assert "response_format" not in second.json
        assert session.messages[-3].content == json.dumps(
            {"name": "Lyon", "kind": "city", "population": 500000})
    finally:
        session.dispose()


def test_session_takes_the_dict_response_format_returns(server: FakeServer, client: ChatClient
                                                        ) -> None:
    session = ChatSession(client)
    try:
        sent = rxchat.response_format({"type": "object", "properties": {"x": {"type": "integer"}}},
                                      name="xs")
        assert session.ask("x is 3", response_format=sent).pipe(
            rxops.parsed(sent)).run() == {"x": 3}
        assert server.requests[-1].json["response_format"] == sent
    finally:
        session.dispose()


def test_awaiting_parsed_and_iterating_items_in_asyncio_debug_mode(
    server: FakeServer, client: ChatClient
) -> None:
    import asyncio

    from rxchat import aio

    server.enqueue(Reply.text('{"xs": [1, 2, 3]}', pieces=6), Reply.text("[4, 5]", pieces=3))

    async def main() -> tuple[Any, list[Any]]:
        value = await create_stream_completion(PARAMS, client=client).pipe(
            rxops.parsed({"type": "object"}))
        items = [item async for item in aio.iterate(
            create_stream_completion(PARAMS, client=client).pipe(rxops.json_items()))]
        return value, items

    assert asyncio.run(main(), debug=True) == ({"xs": [1, 2, 3]}, [4, 5])
