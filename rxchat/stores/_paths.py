"""Where rxchat keeps its files, created private to their owner.

The data directory is ``RXCHAT_DATA_DIR`` if set, else the platform's user data
directory (``platformdirs``: ``~/.local/share/rxchat`` on Linux, ``~/Library/Application
Support/rxchat`` on macOS, ``%LOCALAPPDATA%\\rxchat`` on Windows). It holds the default
conversation database and the command line's input history.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from pathlib import Path

__all__ = ["DATABASE_NAME", "DATA_DIR_VARIABLE", "data_dir", "default_database", "private_file"]

DATA_DIR_VARIABLE = "RXCHAT_DATA_DIR"
"""The environment variable that moves rxchat's data directory (tests use it)."""

DATABASE_NAME = "conversations.db"
"""The default SQLite store's file name inside the data directory."""


def data_dir(env: Mapping[str, str] | None = None) -> Path:
    """rxchat's data directory (not created).

    Args:
        env: The environment to read ``RXCHAT_DATA_DIR`` from; default ``os.environ``.

    Returns:
        ``RXCHAT_DATA_DIR``, else the platform's user data directory for rxchat.
    """
    env = os.environ if env is None else env
    chosen = env.get(DATA_DIR_VARIABLE)
    if chosen:
        return Path(chosen).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("rxchat", appauthor=False))


def default_database(env: Mapping[str, str] | None = None) -> Path:
    """The default SQLite store's path: ``conversations.db`` in ``data_dir``."""
    return data_dir(env) / DATABASE_NAME


def private_file(path: Path) -> None:
    """Create ``path`` (and missing parents) readable by its owner only.

    Directories created here get mode 0700 and a new file 0600; an existing file
    keeps its mode, so a user who shares theirs on purpose is not overruled.

    Raises:
        OSError: The directory or the file cannot be created.
    """
    missing = [p for p in (path.parent, *path.parent.parents) if not p.exists()]
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process made it first
            directory.mkdir(mode=0o700)
            os.chmod(directory, 0o700)  # mkdir's mode is reduced by the umask
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)
    os.chmod(path, 0o600)
