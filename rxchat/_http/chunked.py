"""A pure, incremental decoder of HTTP/1.1 chunked transfer coding: bytes in, body out.

RFC 9112 section 7.1 ("Chunked Transfer Coding"):

```text
chunked-body   = *chunk last-chunk trailer-section CRLF
chunk          = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
last-chunk     = 1*("0") [ chunk-ext ] CRLF
```

Why rxchat carries it: ``http.client`` never returns past the end of the current HTTP
chunk, so a chunked event stream costs one ``read1`` (and a trip through urllib3) per
event. The transport instead reads the connection's buffered socket file in large
pieces and decodes the framing here, in bulk: one call per read, however many chunks it
holds. No I/O, no threads; feeding the same bytes split anywhere gives the same body.

Leniency follows ``http.client`` where it is harmless: a size line may end in a bare
LF (7.1 and 2.2 allow it), whitespace around the size is skipped, chunk extensions (7.1.1)
and trailer fields (7.1.2) are read and ignored, and a body that ends inside the trailer
section is accepted. Anything else out of grammar is a `ChunkedDecodeError`.
"""

from __future__ import annotations

import re

__all__ = ["ChunkedDecodeError", "ChunkedDecoder"]

MAX_LINE = 65536
"""Longest size or trailer line accepted (``http.client`` uses the same limit)."""

_HEX = re.compile(rb"[0-9A-Fa-f]+")
_SIZE, _DATA, _DATA_END, _TRAILER, _DONE = range(5)


class ChunkedDecodeError(ValueError):
    """The bytes do not follow the chunked transfer coding, or stop before its end."""


class ChunkedDecoder:
    """Turns a chunked HTTP/1.1 message body into the bytes it carries.

    Call `feed` with whatever the connection returned, `end` when it
    reported end of file. `finished` turns true once the last chunk and the
    trailer section were read; bytes after them are kept in `leftover`.
    """

    def __init__(self) -> None:
        self._state = _SIZE
        self._pending = b""
        self._remaining = 0
        self.leftover = b""

    @property
    def finished(self) -> bool:
        """Whether the last chunk and the trailer section have been read."""
        return self._state == _DONE

    def feed(self, data: bytes) -> bytes:
        """Decode the next bytes of the message body.

        Args:
            data: Any number of bytes, split anywhere.

        Returns:
            The chunk data these bytes completed or continued, joined (maybe empty).

        Raises:
            ChunkedDecodeError: A malformed size line, a missing CRLF after chunk
                data, or a line over `MAX_LINE` bytes.
        """
        if self._state == _DONE:
            self.leftover += data
            return b""
        buf = self._pending + data if self._pending else data
        self._pending = b""
        out: list[bytes] = []
        pos = self._decode(buf, out)
        rest = buf[pos:]
        if self._state == _DONE:
            self.leftover += rest
        elif len(rest) > MAX_LINE:
            raise ChunkedDecodeError(f"a chunk size or trailer line is over {MAX_LINE} bytes")
        else:
            self._pending = rest
        return b"".join(out) if len(out) != 1 else out[0]

    def end(self) -> None:
        """Signal end of file.

        Raises:
            ChunkedDecodeError: The body stopped before its last chunk.
        """
        if self._state not in (_TRAILER, _DONE):
            raise ChunkedDecodeError("the body ended before its last chunk")
        self._state = _DONE

    def _decode(self, buf: bytes, out: list[bytes]) -> int:
        """Consume as much of ``buf`` as is complete; return where it stopped."""
        pos, size = 0, len(buf)
        state, remaining = self._state, self._remaining
        while pos < size:
            if state == _DATA:
                take = min(remaining, size - pos)
                out.append(buf[pos : pos + take])
                pos += take
                remaining -= take
                if remaining:
                    break
                state = _DATA_END
            elif state == _DATA_END:
                if size - pos < 2:
                    break
                if buf[pos : pos + 2] != b"\r\n":
                    raise ChunkedDecodeError(f"no CRLF after chunk data: {buf[pos:pos + 2]!r}")
                pos += 2
                state = _SIZE
            else:
                eol = buf.find(b"\n", pos)
                if eol < 0:
                    break
                line, pos = buf[pos:eol], eol + 1
                if state == _SIZE:
                    remaining = _chunk_size(line)
                    state = _DATA if remaining else _TRAILER
                elif line in (b"", b"\r"):  # the blank line that ends the trailers
                    state = _DONE
                    break
        self._state, self._remaining = state, remaining
        return pos


def _chunk_size(line: bytes) -> int:
    """Parse ``chunk-size [ chunk-ext ] [CR]``; extensions are ignored (7.1.1)."""
    digits = line.split(b";", 1)[0].strip(b" \t\r")
    # Any number of leading zeros is legal (``chunk-size = 1*HEXDIG``); more than 16
    # significant digits would be a size beyond 2**64 bytes.
    if not _HEX.fullmatch(digits) or len(digits.lstrip(b"0")) > 16:
        raise ChunkedDecodeError(f"malformed chunk size line: {line[:80]!r}")
    return int(digits, 16)
