"""``rxchat ask`` (one streamed reply) and ``rxchat serve`` (the offline server).

``ask`` writes only the answer to stdout, so ``rxchat ask - < q.txt > a.txt`` gives a
clean file; reasoning, the spinner, notices and the stats line go to stderr (the stats
line only when stderr is a terminal). With a PROMPT and piped stdin, the stdin text is
appended to the prompt (``git diff | rxchat ask "review this"``). The question and its
answer are logged as a conversation unless ``--no-log``; ``-c`` and ``--cid`` ask
within a logged conversation.
"""

from __future__ import annotations

import argparse
import errno
import functools
import threading
import time
from dataclasses import replace

from .._models import ChatCompletionParams, Message, MessageLike
from .._offline.model import offline_reply
from .._offline.server import FakeServer
from .._stream import create_stream_completion
from .._wire.text import valid_message
from ..errors import ConfigurationError, StoreConflict
from ..stores import ConversationStore
from ._backend import connect, offline_notice
from ._console import Console
from ._errors import ExitCode
from ._log import open_store, resumed
from ._render import ReplyView, format_stats, is_terminal
from ._reply import ReplyOutcome, sigint_sets, stream_reply
from ._schema import run_schema_ask

__all__ = ["run_ask", "run_serve"]


def read_prompt(words: list[str], console: Console) -> str:
    """The prompt from the command line, or from stdin for ``-``.

    With words, stdin that is not a terminal (a pipe, a file) is read too and its text
    appended after a blank line.

    Raises:
        ConfigurationError: The prompt is empty.
    """
    if words == ["-"]:
        prompt = console.stdin.read()
    else:
        prompt = " ".join(words)
        piped = "" if is_terminal(console.stdin) else console.stdin.read()
        if piped.strip():
            prompt = f"{prompt.strip()}\n\n{piped.strip(chr(10)).rstrip()}"
    if not prompt.strip():
        raise ConfigurationError("The prompt is empty: pass some text, or '-' to read stdin.")
    return prompt.strip()


def request_messages(
    args: argparse.Namespace, prompt: str, history: tuple[Message, ...] = ()
) -> list[Message]:
    """The conversation sent: the history (or the system prompt), then the question."""
    messages = list(history)
    if args.system and not any(m.role == "system" for m in messages):
        messages.insert(0, Message(role="system", content=args.system))
    messages.append(Message(role="user", content=prompt))
    return messages


def request_params(args: argparse.Namespace, messages: list[Message]) -> ChatCompletionParams:
    """The request body for one question (temperature, usage)."""
    sent: list[MessageLike] = list(messages)
    return {"messages": sent, **extra_params(args)}


def extra_params(args: argparse.Namespace) -> ChatCompletionParams:
    """Request fields every command sends: temperature if given, and usage reporting.

    ``stream_options.include_usage`` asks OpenAI-style servers for the token counts
    shown in the stats line (most providers send them anyway).
    """
    params: ChatCompletionParams = {"stream_options": {"include_usage": True}}
    if args.temperature is not None:
        params["temperature"] = args.temperature
    return params


def run_ask(args: argparse.Namespace, console: Console) -> int:
    """Stream one reply to ``args.prompt`` to stdout.

    Returns:
        0, or 130 if Ctrl-C stopped the reply.

    Raises:
        RxChatError: The request failed (reported by ``main``).
    """
    prompt = read_prompt(args.prompt, console)
    if getattr(args, "schema", None):
        return run_schema_ask(args, console, prompt, request_messages, extra_params)
    store = open_store(args, console.env)
    try:
        outcome, view = _ask_and_log(args, console, prompt, store)
    finally:
        if store is not None:
            store.close()
    if outcome.cancelled:
        console.err("rxchat: cancelled.")
        return ExitCode.INTERRUPTED
    if outcome.error is not None:
        raise outcome.error
    if is_terminal(console.stderr):
        view.note(format_stats(outcome.message.usage, outcome.first_token_s, outcome.stream_s,
                               outcome.message.route))
    return ExitCode.OK


def _ask_and_log(
    args: argparse.Namespace, console: Console, prompt: str, store: ConversationStore | None
) -> tuple[ReplyOutcome, ReplyView]:
    """Stream the reply to ``prompt``; log the exchange if it completed."""
    conversation_id, history = resumed(store, args)
    messages = request_messages(args, prompt, history)
    notice = offline_notice(args, console.env)
    if notice:
        console.err(notice)
    view = ReplyView(
        console.stdout, console.stderr, console.palette(console.stdout),
        console.palette(console.stderr), spinner=is_terminal(console.stderr),
    )
    with connect(args, console.env) as backend, sigint_sets(threading.Event()) as stop:
        complete = backend.complete or create_stream_completion
        deltas = complete(request_params(args, messages), client=backend.client)
        outcome = stream_reply(deltas, view, cancel=None, interrupted=stop)
        model = backend.client.model
    if store is not None and not args.no_log and outcome.error is None and not (
        outcome.cancelled
    ):
        reply = replace(outcome.message, role="assistant", index=0)
        logged = tuple(map(valid_message, (*messages, reply)))  # stdin may hold lone
        _log_exchange(console, store, conversation_id, history, logged, model)  # surrogates
    return outcome, view


def _log_exchange(
    console: Console, store: ConversationStore, conversation_id: str | None,
    history: tuple[Message, ...], messages: tuple[Message, ...], model: str | None,
) -> None:
    """Log the exchange; if another rxchat changed the resumed conversation
    meanwhile, log it as a new conversation instead of overwriting theirs."""
    if conversation_id is not None:
        try:
            store.save_messages(conversation_id, messages, model=model, expected=history)
            return
        except StoreConflict:
            fork = store.create(model=model)
            store.save_messages(fork, messages, model=model, expected=())
            console.err(
                f"rxchat: conversation {conversation_id} was changed by another rxchat "
                "while this answer came; nothing was overwritten. This exchange was "
                f"logged as a new conversation with its history: --cid {fork} continues it."
            )
            return
    created = store.create(model=model)
    store.save_messages(created, messages, model=model, expected=())


def run_serve(args: argparse.Namespace, console: Console) -> int:
    """Serve the offline model on 127.0.0.1 until Ctrl-C.

    Returns:
        0 when stopped by Ctrl-C.

    Raises:
        ConfigurationError: The port cannot be used.
    """
    responder = functools.partial(offline_reply, delay=max(0.0, args.delay))
    server = FakeServer(responder, port=args.port)
    try:
        server.start()
    except OSError as exc:
        busy = exc.errno == errno.EADDRINUSE
        why = "is in use" if busy else f"cannot be used ({exc.strerror})"
        raise ConfigurationError(
            f"Port {args.port} on 127.0.0.1 {why}; choose another with --port "
            "(0 picks a free one)."
        ) from exc
    try:
        console.out(f"rxchat offline model serving an OpenAI-compatible API at {server.base_url}")
        console.out(
            "It is not a language model: it repeats and recalls what it is told. "
            f"For rxchat: export RXCHAT_BASE_URL={server.base_url} (no key needed); for "
            f"the openai SDK: OPENAI_BASE_URL={server.base_url} OPENAI_API_KEY=x. "
            "Ctrl-C stops it."
        )
        while True:
            time.sleep(1.0)
    except KeyboardInterrupt:
        console.out("rxchat: server stopped.")
    finally:
        server.stop()
    return ExitCode.OK
