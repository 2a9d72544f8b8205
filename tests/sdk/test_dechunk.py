"""Chunked transfer decoding of the event stream, over any split of the bytes."""

from __future__ import annotations

import http.client
import io

import pytest

from lockgate.sdk.transport import _dechunk, _Dechunker

PAYLOAD = [b"retry: 1000\n\n", b"id: 3\nevent: change\ndata: {}\n\n", b": ping\n\n"]
WIRE = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in PAYLOAD) + b"0\r\n\r\n"


class Pieces(io.RawIOBase):
    """A reader returning the wire in pieces of ``size`` bytes (as packets arrive)."""

    def __init__(self, data: bytes, size: int) -> None:
        self.data, self.size = data, size

    def read1(self, n: int = -1) -> bytes:
        piece, self.data = self.data[: self.size], self.data[self.size :]
        return piece


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 16, 64, len(WIRE)])
def test_any_split_gives_the_payload_and_stops_at_the_last_chunk(size: int) -> None:
    assert b"".join(_dechunk(Pieces(WIRE + b"garbage after the end", size))) == b"".join(PAYLOAD)


def test_chunk_extensions_are_ignored() -> None:
    assert _Dechunker().feed(b"5;name=value\r\nhello\r\n") == b"hello"


@pytest.mark.parametrize(
    "wire",
    [
        pytest.param(b"zz\r\nhello\r\n", id="size-not-hex"),
        pytest.param(b"5\r\nhelloXX", id="bad-terminator"),
        pytest.param(b"1" * 2000, id="endless-size-line"),
    ],
)
def test_malformed_framing_is_a_transport_error(wire: bytes) -> None:
    with pytest.raises(http.client.HTTPException):
        _Dechunker().feed(wire)


def test_a_connection_closed_mid_stream_just_ends() -> None:
    assert b"".join(_dechunk(Pieces(WIRE[:20], 4))) == PAYLOAD[0]
