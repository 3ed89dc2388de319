"""``rxchat ask --schema FILE.json|module:Model PROMPT``: a reply as JSON that fits a schema.

The schema is a JSON Schema file, or a pydantic model, dataclass or ``TypedDict``
named ``module:Name`` (the module is found in the current directory too). The request
asks for it (``response_format``, strict); on a terminal the JSON is redrawn as it
grows, piped it is written once, whole, when it is complete. A reply that cannot fit
stops at the first part that does not (`StructuredOutputError`, exit status 8).
Output is JSON whatever the model sends: control characters are escaped
(``\\u001b``), never written raw.
"""

from __future__ import annotations

import argparse
import copy
import importlib
import json
import os
import queue
import re
import sys
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TextIO

from .._models import Message
from .._stream import create_stream_completion
from .._structured.operators import partial_json
from .._structured.schema import Structured, as_structured
from ..errors import ConfigurationError
from ._backend import connect, offline_notice
from ._console import Console
from ._errors import ExitCode
from ._log import open_store, resumed
from ._render import is_terminal
from ._reply import sigint_sets

__all__ = ["load_schema", "run_schema_ask", "show_json"]

POLL_S = 0.08
"""How often the Ctrl-C flag is looked at while the reply streams."""

_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029]")


def load_schema(spec: str) -> Structured:
    """The schema ``--schema`` names: a JSON file, or ``module:Name``.

    Raises:
        ConfigurationError: The file or name cannot be read as a schema (says why).
    """
    if spec.endswith(".json") or os.path.isfile(spec):
        try:
            with open(spec, encoding="utf-8") as file:
                schema = json.load(file)
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"--schema {spec!r}: cannot read it as JSON ({exc}).") from exc
        if not isinstance(schema, dict):
            raise ConfigurationError(f"--schema {spec!r}: a JSON Schema is an object.")
        return as_structured(schema)
    module_name, colon, attribute = spec.partition(":")
    if not colon or not module_name or not attribute:
        raise ConfigurationError(
            f"--schema {spec!r}: give a JSON Schema file (.json) or module:Model.")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.append(os.getcwd())  # found as `python -m` would find it
    try:
        value: Any = importlib.import_module(module_name)
    except Exception as exc:
        raise ConfigurationError(f"--schema {spec!r}: cannot import {module_name!r} "
                                 f"({type(exc).__name__}: {exc}).") from exc
    for part in attribute.split("."):
        value = getattr(value, part, None)
    if value is None:
        raise ConfigurationError(f"--schema {spec!r}: {module_name} has no {attribute!r}.")
    return as_structured(value)


def show_json(value: Any) -> str:
    """``value`` as indented JSON that is safe on a terminal (no raw control characters)."""
    text = json.dumps(value, indent=2, ensure_ascii=False)
    return _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def run_schema_ask(
    args: argparse.Namespace, console: Console, prompt: str,
    messages_for: Callable[[argparse.Namespace, str, tuple[Message, ...]], list[Message]],
    extra_params: Callable[[argparse.Namespace], Any],
) -> int:
    """Ask ``prompt`` for JSON fitting ``args.schema``; show it as it grows.

    Args:
        args: The parsed arguments.
        console: The terminal.
        prompt: The question.
        messages_for: Builds the conversation sent (``ask``'s own).
        extra_params: The request fields every command sends.

    Returns:
        0, or 130 if Ctrl-C stopped the reply.

    Raises:
        RxChatError: The request failed, or the reply does not fit.
    """
    spec = load_schema(args.schema)
    store = open_store(args, console.env)
    try:
        conversation_id, history = resumed(store, args)
        messages = messages_for(args, prompt, history)
        notice = offline_notice(args, console.env)
        if notice:
            console.err(notice)
        params: Any = {"messages": list(messages), **extra_params(args),
                       "response_format": spec.response_format()}
        live = is_terminal(console.stdout)
        with connect(args, console.env) as backend:
            deltas = create_stream_completion(params, client=backend.client)
            outcome = _play(deltas.pipe(partial_json(spec)), console.stdout, live)
            model = backend.client.model
        if outcome == "cancelled":
            console.err("rxchat: cancelled.")
            return ExitCode.INTERRUPTED
        if isinstance(outcome, Exception):
            raise outcome
        text = json.dumps(outcome[0], ensure_ascii=False)
        if not live:
            console.stdout.write(show_json(outcome[0]) + "\n")
        if store is not None and not args.no_log:
            reply = Message(role="assistant", content=text)
            conversation_id = conversation_id or store.create(model=model)
            store.save_messages(conversation_id, (*messages, replace(reply, index=0)),
                                model=model)
    finally:
        if store is not None:
            store.close()
    return ExitCode.OK


def _play(values: Any, out: TextIO, live: bool) -> Any:
    """Stream the growing value; redraw it on a terminal. Returns ``(value,)``, the
    error, or ``"cancelled"``."""
    inbox: queue.Queue[tuple[str, Any]] = queue.Queue()
    subscription = values.subscribe(
        lambda v: inbox.put(("value", show_json(v) if live else copy.deepcopy(v))),
        lambda e: inbox.put(("error", e)),
        lambda: inbox.put(("done", None)),
    )
    shown_lines = 0
    last: Any = None
    with sigint_sets(threading.Event()) as stop:
        try:
            while True:
                if stop.is_set():
                    subscription.dispose()
                    if live and shown_lines >= 0:
                        out.write("\n")
                    return "cancelled"
                try:
                    kind, item = inbox.get(timeout=POLL_S)
                except queue.Empty:
                    continue
                if kind == "error":
                    if live and last is not None:
                        out.write("\n")
                    return item
                if kind == "done":
                    if live and last is not None:
                        out.write("\n")
                        out.flush()
                    return (json.loads(last) if live and last is not None else last,)
                if live:
                    redraw = f"\x1b[{shown_lines}F" if shown_lines else "\r"
                    out.write(f"{redraw}\x1b[J{item}")
                    out.flush()
                    shown_lines = item.count("\n")
                last = item
        finally:
            subscription.dispose()
