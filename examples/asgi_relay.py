"""Relay a ChatSession turn as Server-Sent Events from an ASGI app (Starlette on uvicorn).

    pip install 'rxchat[asgi]'
    python examples/asgi_relay.py            # or: uvicorn --app-dir examples asgi_relay:app
    curl -N 'http://127.0.0.1:8000/chat?q=hello&cid=demo'

`GET /chat?q=...&cid=...` asks one turn of the conversation `cid` (one `ChatSession`
each, so every turn sees the earlier ones) and streams its text as it arrives:

    data: {"content": "Hel"}
    data: {"content": "lo"}
    event: done
    data: {}

When the browser goes away, Starlette cancels the task writing the response; leaving
the `async with aio.iterate(...)` block disposes the turn's subscription, which closes
the upstream socket at once and keeps the partial reply in the history with
`finish_reason="cancelled"`. Nothing else is needed: no thread, no queue, no flag.
`GET /messages?cid=...` shows the conversation so far.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from reactivex import Observable
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from rxchat import ChatClient, ChatSession, Message, aio
from rxchat import operators as rxops
from rxchat.errors import RxChatError


def create_app(client: ChatClient | None = None, *, system: str | None = None) -> Starlette:
    """The relay app; its sessions talk to `client` (by default, the environment's).

    Args:
        client: Where the turns go; None for `RXCHAT_BASE_URL` / `RXCHAT_API_KEY`.
        system: The system prompt of every new conversation.

    Returns:
        A Starlette app; `app.state.sessions` maps conversation ids to sessions.
    """
    sessions: dict[str, ChatSession] = {}

    def session_for(request: Request) -> ChatSession:
        cid = request.query_params.get("cid", "default")
        if cid not in sessions:
            sessions[cid] = ChatSession(client, system=system)
        return sessions[cid]

    async def chat(request: Request) -> StreamingResponse:
        turn = session_for(request).ask(request.query_params.get("q", ""))
        return StreamingResponse(
            relay(turn),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    async def messages(request: Request) -> JSONResponse:
        history = session_for(request).messages
        return JSONResponse([_as_json(m) for m in history])

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        for session in sessions.values():
            session.dispose()

    app = Starlette(
        routes=[Route("/chat", chat), Route("/messages", messages)], lifespan=lifespan
    )
    app.state.sessions = sessions
    return app


async def relay(turn: Observable[Message]) -> AsyncIterator[str]:
    """One turn as SSE: an event per piece of text, then `done` (or `error`).

    Args:
        turn: A cold turn, `session.ask(text)`: iterating it asks the question.

    Yields:
        The text of each event.
    """
    try:
        async with aio.iterate(turn.pipe(rxops.content())) as pieces:
            async for text in pieces:
                yield _event({"content": text})
    except RxChatError as exc:  # its message says what happened and what to do
        yield _event({"error": str(exc)}, name="error")
        return
    yield _event({}, name="done")


def _event(data: dict[str, Any], *, name: str | None = None) -> str:
    head = f"event: {name}\n" if name else ""
    return f"{head}data: {json.dumps(data, ensure_ascii=False)}\n\n"


def _as_json(message: Message) -> dict[str, Any]:
    return {
        "role": message.role,
        "content": message.content,
        "finish_reason": message.finish_reason,
    }


app = create_app()

if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=8000)
