"""``rxchat chat``: an interactive conversation on a `ChatSession`.

Each message typed is ``session.send(text)``; its deltas are rendered as they arrive
(`._reply`), and a stats line follows. A message is one line, a bracketed paste
(several lines, indentation kept), or the lines between two lines holding only three double quotes.
Ctrl-C during a reply calls ``session.cancel()``: the HTTP stream is closed and the
session keeps the partial reply. Ctrl-C or Ctrl-D at an empty prompt ends the chat with
status 0. A failed turn prints one line and the conversation goes on (``/retry`` asks it
again). Lines starting with ``/`` are commands (`._slash`). Every commit is written
to the conversation log (`._log`) unless ``--no-log``.
"""

from __future__ import annotations

import argparse
import functools
import queue
import threading
from collections.abc import Callable
from typing import Any

from reactivex import Observable

from .. import __version__
from .._models import Message
from .._session.session import ChatSession
from ..errors import (
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    RxChatError,
)
from ..stores import ConversationStore
from ._backend import Backend, connect, offline_notice
from ._console import Console
from ._errors import ExitCode, report_error
from ._log import ConversationLog, history_path, open_store, resumed, session_holding
from ._oneshot import extra_params
from ._render import ReplyView, format_stats, is_terminal
from ._reply import ReplyOutcome, sigint_sets, stream_reply
from ._slash import run_command
from ._tools import ToolDesk, load_tools

__all__ = ["Chat", "run_chat"]

PROMPT = "you> "
MORE = "...> "
"""The prompt inside a block of lines between two triple-quote lines."""
BLOCK = '"""'


class Chat:
    """The interactive loop: the console, the backend and the current session.

    Args:
        console: Where to read and write.
        backend: The client the session talks through.
        args: The parsed options (``system``, ``model``, ``temperature``, ``no_log``).
        store: Where conversations are logged (None: ``--no-log``).
        conversation_id: The logged conversation to go on with, or None for a new one.
        history: Its messages.
    """

    def __init__(
        self, console: Console, backend: Backend, args: argparse.Namespace,
        store: ConversationStore | None = None, conversation_id: str | None = None,
        history: tuple[Message, ...] = (),
    ) -> None:
        self.console = console
        self.backend = backend
        self.debug = bool(args.debug)
        self.palette = console.palette(console.stdout)
        tools = load_tools(getattr(args, "tool", None) or ())
        yes = bool(getattr(args, "yes", False))
        self.desk = ToolDesk(console, ask_first=not yes)
        self.session = session_holding(
            history, backend.client, model=args.model, params=extra_params(args),
            **({"complete": backend.complete} if backend.complete else {}),
            **({} if history else {"system": args.system}),
            tools=tools, approve=None if yes else self.desk.approve,
        )
        if tools:
            self.session.subscribe(self.desk.watch)
        if history and args.system:
            self.session.set_system(args.system)
        self.log = ConversationLog(store, self.error, enabled=not args.no_log, say=self.say)
        self.log.follow(self.session, conversation_id, self.current_model, base=history)

    def current_model(self) -> str | None:
        """The model the next turn uses."""
        return self.session.model or self.backend.client.model

    def replace_session(self, session: ChatSession) -> None:
        """Talk on ``session`` from now on, logged as a new conversation."""
        self.log.stop()
        self.session = session
        self.log.follow(session, None, self.current_model)

    def loop(self) -> int:
        """Read lines until ``/exit``, Ctrl-D or Ctrl-C at an empty prompt.

        Returns:
            0.
        """
        while True:
            try:
                text = self.read_message()
            except KeyboardInterrupt:
                self.console.out("")
                if self.console.typed_text().strip():
                    continue  # Ctrl-C discards a half-typed line; at an empty prompt, quits
                return ExitCode.OK
            except EOFError:
                self.console.out("")
                return ExitCode.OK
            if not text:
                continue
            if text.startswith("/") and "\n" not in text:
                if run_command(self, text):
                    return ExitCode.OK
                continue
            self.turn(functools.partial(self.session.send, text))

    def read_message(self) -> str:
        """One message: a line, a pasted block, or the lines between two BLOCK lines.

        Returns:
            The text; a single line stripped, several lines with their indentation
            (only the blank lines around them and trailing spaces removed).

        Raises:
            EOFError: Ctrl-D or the end of input (inside a block too).
            KeyboardInterrupt: Ctrl-C (inside a block it discards the block).
        """
        line = self.console.read_line(self.palette.bold(PROMPT))
        if line.strip() == BLOCK:
            lines: list[str] = []
            while (line := self.console.read_line(self.palette.dim(MORE))).strip() != BLOCK:
                lines.append(line)
            line = "\n".join(lines)
        if "\n" not in line:
            return line.strip()
        kept = [part.rstrip() for part in line.split("\n")]
        return "\n".join(kept).strip("\n")

    def turn(self, ask: Callable[[], Observable[Message]]) -> ReplyOutcome | None:
        """Ask a turn, render its reply, then its stats or its error.

        Args:
            ask: Starts the turn (``session.send``, ``session.regenerate``).

        Returns:
            How the reply went, or None if the turn could not be asked.
        """
        inbox: queue.Queue[Any] = queue.Queue()  # deltas, and the tools' prompts
        self.desk.open(inbox)
        try:
            played = self._play(ask, inbox)
        finally:
            self.desk.open(None)
        if played is None:
            return None
        outcome, view = played
        if outcome.cancelled:
            view.note("[cancelled: the partial reply is kept; /undo removes it]")
        elif outcome.error is not None:
            retryable = not isinstance(
                outcome.error, (AuthenticationError, BadRequestError, ConfigurationError)
            )
            self.error(outcome.error, hint=" (/retry asks again)" if retryable else "")
            return outcome
        usage = outcome.message.usage
        route = outcome.message.route
        view.note(f"[{format_stats(usage, outcome.first_token_s, outcome.stream_s, route)}]")
        return outcome

    def _play(
        self, ask: Callable[[], Observable[Message]], inbox: queue.Queue[Any]
    ) -> tuple[ReplyOutcome, ReplyView] | None:
        try:
            deltas = ask()
        except RxChatError as exc:
            self.error(exc)
            return None
        out = self.console.stdout
        view = ReplyView(out, out, self.palette, self.palette, spinner=is_terminal(out))
        with sigint_sets(threading.Event()) as interrupted:
            outcome = stream_reply(deltas, view, cancel=self.session.cancel,
                                   interrupted=interrupted, inbox=inbox)
        return outcome, view

    def error(self, error: BaseException, *, hint: str = "") -> None:
        """Print one line about ``error`` on stderr (and its traceback with --debug)."""
        stderr = self.console.stderr
        report_error(error, stderr, debug=self.debug, secrets=self.console.secrets,
                     hint=hint, paint=self.console.palette(stderr).red)

    def problem(self, text: str) -> None:
        """Print one line on stderr about something that cannot be done now."""
        self.console.err(self.console.palette(self.console.stderr).red(f"rxchat: {text}"))

    def say(self, text: str) -> None:
        """A dimmed line of information on stdout."""
        self.console.out(self.palette.dim(text))


def run_chat(args: argparse.Namespace, console: Console) -> int:
    """Run the interactive chat until the person leaves.

    Returns:
        0 when they leave.

    Raises:
        ConfigurationError: The base URL cannot be used.
    """
    notice = offline_notice(args, console.env)
    store = open_store(args, console.env)
    try:
        conversation_id, history = resumed(store, args)
        console.history_path = history_path(args, console.env)
        with connect(args, console.env) as backend:
            if notice:
                console.err(notice)
            chat = Chat(console, backend, args, store, conversation_id, history)
            model = chat.current_model()
            where = ("the offline model" if backend.offline
                     else f"{model} at {backend.client.base_url}")
            if backend.complete is not None:
                where = f"{len(backend.complete.routes)} hedged routes from {args.routes}"
            chat.say(f"rxchat {__version__}, talking to {where}. /help lists the commands; "
                     '""" starts and ends a multi-line message; Ctrl-C stops a reply, '
                     "Ctrl-D quits.")
            if history:
                chat.say(f"[continuing conversation {conversation_id}: "
                         f"{len(history)} messages]")
            try:
                return chat.loop()
            finally:
                logged = chat.log.conversation_id
                chat.log.stop()
                if logged is not None:
                    chat.say(f"[logged as {logged}; rxchat chat -c continues it]")
    finally:
        if store is not None:
            store.close()
