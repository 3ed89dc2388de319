"""The injected terminal: streams, environment, colours and line input.

``main()`` receives stdout, stderr, stdin and the environment instead of reading the
globals, so tests can run every command in-process. When stdin and stdout are the real
terminal, lines are read with `input` and `readline` (line editing and
history with the arrow keys); otherwise from ``stdin`` directly.
"""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TextIO

from ._render import Palette, is_terminal, palette_for

__all__ = ["Console"]

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
    """

    stdout: TextIO
    stderr: TextIO
    stdin: TextIO
    env: Mapping[str, str]
    no_color: bool = False
    _readline_ready: bool = field(default=False, repr=False)

    def palette(self, stream: TextIO) -> Palette:
        """The colours to use on ``stream``."""
        return palette_for(stream, self.env, no_color=self.no_color)

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
            return input(_STYLE.sub("\001\\1\002", prompt))
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
        if not self._readline_ready:
            self._readline_ready = True
            with contextlib.suppress(ImportError):  # no readline on Windows
                import readline  # noqa: F401 - importing it gives input() line editing
