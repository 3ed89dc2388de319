"""Saving a conversation to a versioned JSON file, atomically, and reading it back.

The document (``FORMAT``, version ``VERSION``):

```text
{"format": "rxchat.session", "version": 1,
 "model": "...", "params": {...}, "context_window": null,
 "messages": [{"role": "system", "content": "..."}, ...]}
```

``messages`` are ``Message.to_dict()`` forms, so reasoning, ``finish_reason`` and usage
survive the round trip. Writing goes to a temporary file in the same directory, is
flushed and fsynced, then renamed over the target with ``os.replace`` (atomic on POSIX
and Windows): a crash leaves either the old file or the new one, never half of one.
Reading rejects anything that is not such a document with `SessionFileError`,
naming the file, and never writes.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .._models import Message
from ..errors import SessionFileError

__all__ = ["FORMAT", "VERSION", "SessionFile", "read_session", "write_session"]

FORMAT = "rxchat.session"
VERSION = 1


@dataclass(frozen=True)
class SessionFile:
    """The contents of a session file."""

    messages: tuple[Message, ...]
    model: str | None = None
    params: Mapping[str, Any] | None = None
    context_window: int | None = None


def write_session(path: str | os.PathLike[str], contents: SessionFile) -> None:
    """Write ``contents`` to ``path`` atomically (temp file, fsync, ``os.replace``).

    Raises:
        SessionFileError: The file could not be written, or ``params`` is not JSON;
            the previous file, if any, is left as it was.
    """
    target = os.path.abspath(os.fspath(path))
    document = {
        "format": FORMAT,
        "version": VERSION,
        "model": contents.model,
        "params": dict(contents.params or {}),
        "context_window": contents.context_window,
        "messages": [m.to_dict() for m in contents.messages],
    }
    try:
        fd, temp = tempfile.mkstemp(
            dir=os.path.dirname(target), prefix=f".{os.path.basename(target)}.", suffix=".tmp"
        )
    except OSError as exc:
        raise SessionFileError(path, f"could not be saved ({exc}).") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            json.dump(document, file, ensure_ascii=False, indent=1)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, target)
    except BaseException as exc:
        _remove(temp)
        if isinstance(exc, (OSError, TypeError, ValueError)):
            raise SessionFileError(path, f"could not be saved ({exc}); unchanged.") from exc
        raise
    _sync_directory(os.path.dirname(target))


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _sync_directory(directory: str) -> None:
    """Make the rename durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_session(path: str | os.PathLike[str]) -> SessionFile:
    """Read a file written by `write_session`.

    Raises:
        SessionFileError: The file is missing, unreadable, not JSON, not a session
            document, or of a version this rxchat does not know.
    """
    try:
        with open(path, encoding="utf-8") as file:
            document = json.load(file)
    except OSError as exc:
        raise SessionFileError(path, f"could not be read ({exc.strerror or exc}).") from exc
    except ValueError as exc:
        raise SessionFileError(path, f"is corrupt: not valid JSON ({exc}).") from exc
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise SessionFileError(path, f"is not an rxchat session (no \"format\": {FORMAT!r}).")
    version = document.get("version")
    if version != VERSION:
        raise SessionFileError(
            path, f"has version {version!r}, but this rxchat reads version {VERSION}; "
            "upgrade rxchat to load it."
        )
    return _parse(path, document)


def _parse(path: str | os.PathLike[str], document: dict[str, Any]) -> SessionFile:
    messages = document.get("messages")
    if not isinstance(messages, list) or not all(
        isinstance(m, dict) and isinstance(m.get("role"), str) for m in messages
    ):
        raise SessionFileError(path, "is corrupt: \"messages\" must be a list of messages.")
    model, params, window = (document.get(k) for k in ("model", "params", "context_window"))
    if not (model is None or isinstance(model, str)) or not isinstance(params, dict) or not (
        window is None or isinstance(window, int)
    ):
        raise SessionFileError(path, "is corrupt: bad \"model\", \"params\" or \"context_window\".")
    try:
        parsed = tuple(Message.from_dict(m) for m in messages)
    except (TypeError, ValueError, AttributeError) as exc:
        raise SessionFileError(path, f"is corrupt: a message could not be read ({exc}).") from exc
    return SessionFile(parsed, model, params, window)
