"""Tools the CLI tests load with ``--tool tests.cli.tools_for_cli:NAME``."""

from __future__ import annotations

from rxchat import tool


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool(name="shout")
def loud(text: str) -> str:
    """Upper-case a text."""
    return text.upper()


NOT_A_FUNCTION = 3
