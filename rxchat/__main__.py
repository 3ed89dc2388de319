"""``python -m rxchat``: the same as the ``rxchat`` command."""

from __future__ import annotations

from rxchat.cli import main_entry

if __name__ == "__main__":
    main_entry()
