"""The pure chunked transfer-coding decoder (RFC 9112 section 7.1)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rxchat._http.chunked import MAX_LINE, ChunkedDecodeError, ChunkedDecoder


def decode(*pieces: bytes, end: bool = True) -> tuple[bytes, ChunkedDecoder]:
    decoder = ChunkedDecoder()
    body = b"".join(decoder.feed(piece) for piece in pieces)
    if end:
        decoder.end()
    return body, decoder


def frame(*chunks: bytes, trailer: bytes = b"") -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n" + trailer + b"\r\n"


def test_rfc_shape_two_chunks_then_last_chunk() -> None:
    body, decoder = decode(b"4\r\nWiki\r\n5\r\npedia\r\n0\r\n\r\n", end=False)
    assert body == b"Wikipedia"
    assert decoder.finished and decoder.leftover == b""


def test_hex_sizes_either_case_and_leading_zeros() -> None:
    data = b"x" * 26
    assert decode(b"1A\r\n" + data + b"\r\n001a\r\n" + data + b"\r\n0\r\n\r\n")[0] == data * 2
    assert decode(b"1a\r\n" + data + b"\r\n000\r\n\r\n")[0] == data


def test_more_than_16_hex_digits_when_the_extra_ones_are_leading_zeros() -> None:
    # chunk-size = 1*HEXDIG: any number of leading zeros is legal (RFC 9112, 7.1).
    zeros = b"0" * 30
    assert decode(zeros + b"5\r\nhello\r\n" + zeros + b"0\r\n\r\n")[0] == b"hello"
    assert decode(b"%020x\r\nhello\r\n0\r\n\r\n" % 5)[0] == b"hello"


def test_chunk_extensions_are_ignored() -> None:
    body = b'5;name=value;quoted="a;b"\r\nhello\r\n0;last\r\n\r\n'
    assert decode(body)[0] == b"hello"


def test_whitespace_around_the_size_and_bare_lf_size_lines() -> None:
    assert decode(b"5 \r\nhello\r\n0\n\n")[0] == b"hello"
    assert decode(b"5\t;ext\r\nhello\r\n0\r\n\r\n")[0] == b"hello"


def test_trailer_fields_are_read_and_dropped() -> None:
    body, decoder = decode(frame(b"abc", trailer=b"Expires: never\r\nX-Sum: 1\r\n"), end=False)
    assert body == b"abc" and decoder.finished


def test_bytes_after_the_end_are_kept_as_leftover() -> None:
    body, decoder = decode(frame(b"abc") + b"HTTP/1.1 200", b" OK", end=False)
    assert body == b"abc" and decoder.leftover == b"HTTP/1.1 200 OK"


def test_end_inside_the_trailer_section_is_accepted_like_http_client() -> None:
    body, decoder = decode(b"3\r\nabc\r\n0\r\nX-Sum: 1\r\n")
    assert body == b"abc" and decoder.finished


@pytest.mark.parametrize(
    "body",
    [b"", b"3\r\nab", b"3\r\nabc", b"3\r\nabc\r\n", b"3\r\nabc\r\n0", b"3"],
    ids=["nothing", "mid-data", "before-crlf", "before-next-size", "mid-last-size", "mid-size"],
)
def test_cut_off_bodies_are_an_error_at_end(body: bytes) -> None:
    decoder = ChunkedDecoder()
    decoder.feed(body)
    with pytest.raises(ChunkedDecodeError, match="ended before its last chunk"):
        decoder.end()


@pytest.mark.parametrize(
    "size_line",
    [b"zz", b"", b"-1", b"+5", b"0x5", b"1_0", b"5 5", b"\xff", b"1" * 17],
)
def test_malformed_size_lines_are_a_typed_error(size_line: bytes) -> None:
    with pytest.raises(ChunkedDecodeError, match="malformed chunk size"):
        ChunkedDecoder().feed(size_line + b"\r\nhello\r\n0\r\n\r\n")


def test_missing_crlf_after_chunk_data_is_an_error() -> None:
    with pytest.raises(ChunkedDecodeError, match="no CRLF"):
        ChunkedDecoder().feed(b"3\r\nabcX\r\n0\r\n\r\n")


def test_endless_size_line_fails_with_bounded_memory() -> None:
    decoder = ChunkedDecoder()
    with pytest.raises(ChunkedDecodeError, match="over"):
        for _ in range(MAX_LINE // 1000 + 2):
            decoder.feed(b"1" * 1000)


def test_decode_error_is_a_value_error() -> None:
    assert issubclass(ChunkedDecodeError, ValueError)


chunk_lists = st.lists(st.binary(min_size=1, max_size=40), max_size=8)


@settings(max_examples=300, deadline=None)
@given(chunks=chunk_lists, cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=10))
def test_any_split_gives_the_same_body(chunks: list[bytes], cuts: list[int]) -> None:
    wire = frame(*chunks, trailer=b"X-T: 1\r\n")
    points = sorted({c % (len(wire) + 1) for c in cuts})
    pieces = [wire[a:b] for a, b in zip([0, *points], [*points, len(wire)], strict=True)]
    body, decoder = decode(*pieces, end=False)
    assert body == b"".join(chunks)
    assert decoder.finished and decoder.leftover == b""


@settings(max_examples=100, deadline=None)
@given(chunks=chunk_lists)
def test_byte_at_a_time_gives_the_same_body(chunks: list[bytes]) -> None:
    wire = frame(*chunks)
    body, decoder = decode(*(wire[i : i + 1] for i in range(len(wire))), end=False)
    assert body == b"".join(chunks) and decoder.finished
