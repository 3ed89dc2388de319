"""The injected terminal: streams, environment, colours and line input.

``main()`` receives stdout, stderr, stdin and the environment instead of reading the
globals, so tests can run every command in-process. When stdin and stdout are the real
terminal, lines are read with `input` and `readline` (line editing, history
with the arrow keys, kept across runs in ``history_path``, and bracketed paste: a pasted
block arrives as one line with its newlines); otherwise from ``stdin`` directly.
"""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from ..stores._paths import private_file
from ._render import Palette, is_terminal, palette_for
from ._safe import safe_text

__all__ = ["HISTORY_LENGTH", "Console"]

HISTORY_LENGTH = 1000
"""Input lines kept in the history file across runs."""

_STYLE = re.compile(r"(\033\[[0-9;]*m)")


@dataclass
class Console:
    """Where the command line reads and writes.

    Attributes:
        stdout: Replies and command output.
        stderr: Notices and errors.
        stdin: Typed lines, or the prompt of ``ask -``.
        env: Environment variables (API keys, NO_COLOR, TERM).
        no_color: ``--no-color`` was given.
        secrets: Strings never to print (the API keys in use).
        history_path: The file keeping typed lines across runs, or None.
    """

    stdout: TextIO
    stderr: TextIO
    stdin: TextIO
    env: Mapping[str, str]
    no_color: bool = False
    secrets: tuple[str, ...] = field(default=(), repr=False)
    history_path: Path | None = None
    _readline_ready: bool = field(default=False, repr=False)

    def palette(self, stream: TextIO) -> Palette:
        """The colours to use on ``stream``."""
        return palette_for(stream, self.env, no_color=self.no_color)

    def shown(self, text: str, stream: TextIO | None = None) -> str:
        """Model output or stored text as it may be written to ``stream`` (stdout by
        default): control characters escaped on a terminal (``rxchat.cli._safe``)."""
        return safe_text(text, is_terminal(self.stdout if stream is None else stream))

    def out(self, line: str) -> None:
        """Write a line to stdout."""
        self.stdout.write(line + "\n")
        self.stdout.flush()

    def err(self, line: str) -> None:
        """Write a line to stderr."""
        self.stderr.write(line + "\n")
        self.stderr.flush()

    @property
    def interactive(self) -> bool:
        """Whether lines come from a person at the real terminal."""
        return (
            self.stdin is sys.stdin and self.stdout is sys.stdout
            and is_terminal(self.stdin) and is_terminal(self.stdout)
        )

    def read_line(self, prompt: str) -> str:
        """Read one line after showing ``prompt``.

        Args:
            prompt: The prompt; may contain ANSI styles.

        Returns:
            The line without its newline.

        Raises:
            EOFError: Ctrl-D, or the end of stdin.
            KeyboardInterrupt: Ctrl-C at the prompt.
        """
        if self.interactive:
            self._enable_readline()
            # readline counts the prompt's width: styles go between \001 and \002.
            line = input(_STYLE.sub("\001\\1\002", prompt))
            self._remember(line)
            return line
        self.stdout.write(prompt)
        self.stdout.flush()
        line = self.stdin.readline()
        if not line:
            raise EOFError
        line = line.rstrip("\r\n")
        if not is_terminal(self.stdin):
            self.out(line)  # echoed, so a transcript of piped input reads as a dialogue
        return line

    def typed_text(self) -> str:
        """What was typed at the prompt before Ctrl-C ("" off a terminal)."""
        if not self._readline_ready:
            return ""
        try:
            import readline
        except ImportError:  # pragma: no cover - Windows without pyreadline
            return ""
        return readline.get_line_buffer()

    def _enable_readline(self) -> None:
        if self._readline_ready:
            return
        self._readline_ready = True
        try:
            import readline  # importing it gives input() line editing
        except ImportError:  # pragma: no cover - no readline on Windows
            return
        if self.history_path is None:
            return
        with contextlib.suppress(OSError):
            private_file(self.history_path)
            readline.read_history_file(self.history_path)
            if readline.get_current_history_length() > 2 * HISTORY_LENGTH:
                readline.set_history_length(HISTORY_LENGTH)
                readline.write_history_file(self.history_path)  # trimmed to the last lines
                readline.set_history_length(-1)

    def _remember(self, line: str) -> None:
        """Append a typed line to the history file at once (a crash loses nothing)."""
        if self.history_path is None or not line.strip():
            return
        with contextlib.suppress(ImportError, OSError):
            import readline

            readline.append_history_file(1, self.history_path)
