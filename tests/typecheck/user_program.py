"""A small program as a user writes it, type-checked with `mypy --strict` in CI.

It uses plain dict params, a ChatClient, a ChatSession and the operators, against an
installed rxchat (not this source tree), so the published type hints are what is
checked. Run it (`python tests/typecheck/user_program.py`) and it talks to the offline
model on 127.0.0.1: it needs no key and prints three lines.
"""

from __future__ import annotations

from typing import Any

import reactivex.operators as ops

from rxchat import ChatClient, ChatSession, Message, create_stream_completion, offline_client
from rxchat import operators as rxops
from rxchat.errors import RxChatError


def ask(client: ChatClient, question: str) -> str:
    params = {"messages": [{"role": "user", "content": question}], "temperature": 0.2}
    pieces: list[str] = create_stream_completion(params, client=client).pipe(
        rxops.content(), ops.to_list()
    ).run()
    return "".join(pieces)


def with_options(client: ChatClient, options: dict[str, Any]) -> Message:
    params: dict[str, Any] = {"messages": [{"role": "user", "content": "hi"}], **options}
    return create_stream_completion(params, client=client).pipe(rxops.final_message()).run()


def converse(client: ChatClient) -> int:
    session = ChatSession(client, system="Be terse.", params={"temperature": 0})
    for text in ("My name is Ann.", "What is my name?"):
        reply: Message = session.send(text).pipe(rxops.final_message()).run()
        assert reply.content is not None
    return len(session.messages)


def main() -> None:
    with offline_client() as client:
        try:
            print(ask(client, "hello"))
            print(with_options(client, {"max_tokens": 16}).finish_reason)
            print(converse(client))
        except RxChatError as err:
            print(f"error: {err}")


if __name__ == "__main__":
    main()
