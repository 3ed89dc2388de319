"""Terminal rendering: colours, the waiting spinner, one streamed reply, the stats line.

Colour is used only when the stream is a terminal, ``TERM`` is not ``dumb``, ``NO_COLOR``
is unset or empty (https://no-color.org) and ``--no-color`` was not given; the spinner
only on a terminal. Otherwise the output is plain text that pipes cleanly. Reasoning is
written before the answer, dimmed and labelled, so it is never mistaken for the answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TextIO

from .._models import Message, Usage
from ._safe import safe_text

__all__ = ["Palette", "ReplyView", "format_stats", "is_terminal", "palette_for"]

MIN_RATE_SPAN_S = 0.05
"""Shortest reply (first text to end) whose tokens/s is shown; a reply that arrives in
one burst has no meaningful rate."""

_RESET = "\033[0m"
_SPINNER_UNICODE = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
_SPINNER_ASCII = "|/-\\"


def is_terminal(stream: TextIO) -> bool:
    """Whether ``stream`` is connected to a terminal (False for anything odd)."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False


@dataclass(frozen=True)
class Palette:
    """ANSI styles, or none at all when ``enabled`` is False."""

    enabled: bool = False

    def _wrap(self, code: str, text: str) -> str:
        return f"\033[{code}m{text}{_RESET}" if self.enabled and text else text

    def dim(self, text: str) -> str:
        """Faint text (reasoning, stats)."""
        return self._wrap("2", text)

    def bold(self, text: str) -> str:
        """Bold text (the prompt)."""
        return self._wrap("1", text)

    def red(self, text: str) -> str:
        """Red text (errors)."""
        return self._wrap("31", text)

    def start_dim(self) -> str:
        """The code that turns faint text on (for text streamed piece by piece)."""
        return "\033[2m" if self.enabled else ""

    def reset(self) -> str:
        """The code that ends every style."""
        return _RESET if self.enabled else ""


def palette_for(stream: TextIO, env: Mapping[str, str], *, no_color: bool = False) -> Palette:
    """The palette to use on ``stream``, honouring NO_COLOR, TERM and ``--no-color``.

    Args:
        stream: Where the styled text goes.
        env: The environment variables.
        no_color: ``--no-color`` was given.

    Returns:
        An enabled palette only for a colour-capable terminal.
    """
    wanted = not no_color and not env.get("NO_COLOR") and env.get("TERM") != "dumb"
    return Palette(wanted and is_terminal(stream))


def format_stats(
    usage: Usage | None, first_token_s: float | None, stream_s: float | None,
    route: str | None = None,
) -> str:
    """One short line: tokens used, time to first token and tokens per second.

    Args:
        usage: Token counts, if the server sent them.
        first_token_s: Seconds from the request to the first text, if any arrived.
        stream_s: Seconds from the first text to the end of the reply.
        route: Which route answered (``--routes``), if the reply was hedged.

    Returns:
        The known parts, e.g. ``30 tokens (+12 prompt), first token 0.21 s, 45.1 tokens/s``.
    """
    parts: list[str] = []
    tokens = usage.completion_tokens if usage is not None else 0
    if usage is not None and tokens:
        parts.append(f"{tokens} tokens (+{usage.prompt_tokens} prompt)")
    if first_token_s is not None:
        parts.append(f"first token {first_token_s:.2f} s")
    if tokens and stream_s is not None and stream_s >= MIN_RATE_SPAN_S:
        parts.append(f"{tokens / stream_s:.1f} tokens/s")
    if route is not None:
        parts.append(f"via {route}")
    return ", ".join(parts) or "no reply"


class ReplyView:
    """Writes one streamed reply as its deltas arrive.

    Args:
        answer: Where the answer text goes.
        side: Where reasoning, the spinner and notes go (may be ``answer``).
        answer_palette: Styles for ``answer``.
        side_palette: Styles for ``side``.
        spinner: Show a spinner on ``side`` until the first text arrives.
    """

    def __init__(
        self, answer: TextIO, side: TextIO, answer_palette: Palette, side_palette: Palette,
        *, spinner: bool = False,
    ) -> None:
        self._answer = answer
        self._side = side
        self._answer_style = answer_palette
        self._side_style = side_palette
        self._spinner = spinner
        encoding = (getattr(side, "encoding", None) or "").lower().replace("-", "")
        self._frames = _SPINNER_UNICODE if encoding == "utf8" else _SPINNER_ASCII
        self._tick = 0
        self._spinning = False
        self._mode: str | None = None
        self._line_open = {id(answer): False, id(side): False}
        self._terminal = {id(answer): is_terminal(answer), id(side): is_terminal(side)}
        self._held = {id(answer): "", id(side): ""}  # half a surrogate pair, until the rest

    def tick(self) -> None:
        """Draw the next spinner frame while nothing has arrived yet."""
        if not self._spinner or self._mode is not None:
            return
        frame = self._frames[self._tick % len(self._frames)]
        self._tick += 1
        self._spinning = True
        self._side.write(f"\r{self._side_style.dim(frame + ' waiting for the reply')}")
        self._side.flush()

    def delta(self, message: Message) -> None:
        """Write a delta's reasoning and content (empty pieces are ignored)."""
        if message.reasoning_content:
            self._write_reasoning(message.reasoning_content)
        if message.content:
            self._write_answer(message.content)

    def _write_reasoning(self, text: str) -> None:
        if self._mode != "reasoning":
            self._clear_spinner()
            label = "thinking: " if self._side_style.enabled else "[reasoning] "
            self._side.write(self._side_style.dim(label) + self._side_style.start_dim())
            self._mode = "reasoning"
        self._emit(self._side, text)

    def _write_answer(self, text: str) -> None:
        if self._mode != "answer":
            self._clear_spinner()
            if self._mode == "reasoning":
                self._side.write(self._side_style.reset())
                self._end_line(self._side)
                if self._side is self._answer and not self._answer_style.enabled:
                    self._answer.write("[answer] ")
            self._mode = "answer"
        self._emit(self._answer, text)

    def _emit(self, stream: TextIO, text: str) -> None:
        key = id(stream)
        text, self._held[key] = self._held[key] + text, ""
        if text and "\ud800" <= text[-1] <= "\udbff":  # the pair may end in the next delta
            text, self._held[key] = text[:-1], text[-1]
        stream.write(safe_text(text, self._terminal[key]))  # model output: no raw escapes
        stream.flush()
        if text:
            self._line_open[key] = not text.endswith("\n")

    def _clear_spinner(self) -> None:
        if self._spinning:
            self._side.write("\r\033[K")
            self._spinning = False

    def _end_line(self, stream: TextIO) -> None:
        if self._held.get(id(stream)):  # a lone half of a pair at the end: U+FFFD
            self._held[id(stream)] = ""
            stream.write("\ufffd")
            self._line_open[id(stream)] = True
        if self._line_open.get(id(stream)):
            stream.write("\n")
            self._line_open[id(stream)] = False
        stream.flush()

    def finish(self) -> None:
        """End the reply: stop the spinner, reset styles and close open lines."""
        self._clear_spinner()
        if self._mode == "reasoning":
            self._side.write(self._side_style.reset())
        self._end_line(self._side)
        self._end_line(self._answer)

    def pause(self) -> None:
        """Close the reply's open line so a line of something else can be written;
        the reply goes on below it."""
        self.finish()
        self._mode = None

    def note(self, text: str) -> None:
        """A dimmed line on ``side`` (stats, "cancelled")."""
        self._side.write(self._side_style.dim(text) + "\n")
        self._side.flush()
