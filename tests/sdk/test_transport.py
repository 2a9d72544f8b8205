"""The SDK's streaming transport: body framing decoders and ``HttpTransport.stream``.

The decoders are fed bytes split at every position; ``stream`` talks to a tiny scripted
HTTP server on 127.0.0.1 (plain or TLS, with a certificate made for the test) that answers
exactly the bytes each test writes.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lockgate.sdk.reactor import StreamReactor
from lockgate.sdk.transport import (
    BodyDecoder,
    ChunkedDecoder,
    HttpError,
    HttpTransport,
    IdentityDecoder,
    KeyRejectedError,
    NotAStreamError,
    OpenStream,
    StreamAbortedError,
    TransportError,
)
from tests.sdk.tls import Certificate

IO_TIMEOUT = 5.0
KEY = "lgs_transport_key"
AGENT = "lockgate-test/1.0"

# -- framing helpers -----------------------------------------------------------------------


def chunk(data: bytes, size: str | None = None) -> bytes:
    """One chunk; ``size`` overrides the hex size line (case, extensions)."""
    return (size or f"{len(data):x}").encode() + b"\r\n" + data + b"\r\n"


LAST = b"0\r\n\r\n"


def head(status: str, *fields: str) -> bytes:
    return "\r\n".join([f"HTTP/1.1 {status}", *fields]).encode("latin-1") + b"\r\n\r\n"


SSE_CHUNKED = head("200 OK", "Content-Type: text/event-stream", "Transfer-Encoding: chunked")
EVENT_1 = b"event: snapshot\nid: 1\ndata: {}\n\n"
EVENT_2 = b"event: change\nid: 2\ndata: {}\n\n"

# Several chunks with extensions, sizes in upper and lower case, and two trailer fields.
BODY_PAYLOAD = b"hello" + b"0123456789" + b"abcdefghijklmnopqrstuvwxyz" + b"x" * 171
BODY_RAW = (
    chunk(b"hello", "5;name=value")
    + chunk(b"0123456789", "A")
    + chunk(b"abcdefghijklmnopqrstuvwxyz", '1a;a=1;b="quoted;value"')
    + chunk(b"x" * 171, "aB")
    + b"0;last=yes\r\nTrailer-One: 1\r\nTrailer-Two: two\r\n\r\n"
)


def feed_bytewise(decoder: BodyDecoder, raw: bytes) -> bytes:
    return b"".join(decoder.feed(raw[index : index + 1]) for index in range(len(raw)))


def is_done(decoder: BodyDecoder) -> bool:
    """``decoder.done``, read anew (mypy would keep an earlier assert's narrowing)."""
    return decoder.done


# -- ChunkedDecoder ------------------------------------------------------------------------


def test_chunked_decodes_a_whole_body() -> None:
    decoder = ChunkedDecoder()
    assert decoder.feed(BODY_RAW) == BODY_PAYLOAD
    assert decoder.done
    decoder.eof()  # complete: the connection may end now


def test_chunked_decodes_a_body_split_at_every_position() -> None:
    for cut in range(len(BODY_RAW) + 1):
        decoder = ChunkedDecoder()
        payload = decoder.feed(BODY_RAW[:cut])
        assert decoder.done is (cut == len(BODY_RAW)), cut
        payload += decoder.feed(BODY_RAW[cut:])
        assert payload == BODY_PAYLOAD, cut
        assert decoder.done, cut


def test_chunked_decodes_a_body_split_at_every_pair_of_positions() -> None:
    size = len(BODY_RAW)
    for first in range(0, size + 1, 3):
        for second in range(first, size + 1):
            decoder = ChunkedDecoder()
            parts = (BODY_RAW[:first], BODY_RAW[first:second], BODY_RAW[second:])
            assert b"".join(decoder.feed(part) for part in parts) == BODY_PAYLOAD
            assert decoder.done


def test_chunked_byte_by_byte_is_done_exactly_after_the_final_empty_line() -> None:
    decoder = ChunkedDecoder()
    payload = b""
    for index in range(len(BODY_RAW)):
        payload += decoder.feed(BODY_RAW[index : index + 1])
        assert decoder.done is (index == len(BODY_RAW) - 1), index
    assert payload == BODY_PAYLOAD


def test_chunked_ignores_whatever_follows_the_body() -> None:
    decoder = ChunkedDecoder()
    assert decoder.feed(chunk(b"abc") + LAST + b"5\r\nextra\r\n") == b"abc"
    assert decoder.done
    assert decoder.feed(b"more bytes\r\n") == b""


def test_chunked_empty_body() -> None:
    decoder = ChunkedDecoder()
    assert decoder.feed(b"0\r\n") == b""
    assert not decoder.done  # the (empty) trailer section has not ended yet
    assert decoder.feed(b"\r\n") == b""
    assert is_done(decoder)


@pytest.mark.parametrize("size", ["ff", "FF", "fF", "0ff", "00ff"])
def test_chunked_hex_sizes_in_any_case(size: str) -> None:
    data = bytes(range(255))
    decoder = ChunkedDecoder()
    assert decoder.feed(chunk(data, size) + LAST) == data
    assert decoder.done


@st.composite
def chunked_bodies(draw: st.DrawFn) -> tuple[bytes, bytes, list[int]]:
    chunks = draw(st.lists(st.binary(min_size=1, max_size=40), max_size=6))
    raw = b""
    for data in chunks:
        size = f"{len(data):x}"
        size = size.upper() if draw(st.booleans()) else size
        extension = draw(st.sampled_from(["", ";x", ";name=value", ';q="a;b"']))
        raw += chunk(data, size + extension)
    trailers = draw(st.lists(st.sampled_from([b"A: 1", b"Trailer-B: two words"]), max_size=2))
    raw += b"0\r\n" + b"".join(t + b"\r\n" for t in trailers) + b"\r\n"
    cuts = sorted(draw(st.lists(st.integers(0, len(raw)), max_size=8)))
    return raw, b"".join(chunks), cuts


@settings(max_examples=300, deadline=None)
@given(chunked_bodies())
def test_chunked_any_body_split_anywhere(case: tuple[bytes, bytes, list[int]]) -> None:
    raw, payload, cuts = case
    decoder = ChunkedDecoder()
    out = b""
    for start, end in zip([0, *cuts], [*cuts, len(raw)], strict=True):
        out += decoder.feed(raw[start:end])
        assert decoder.done is (end == len(raw))
    assert out == payload
    assert decoder.done


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"xyz\r\n", id="non-hex"),
        pytest.param(b"\r\n", id="empty"),
        pytest.param(b";name=value\r\n", id="extension-only"),
        pytest.param(b"1" * 17 + b"\r\n", id="17-hex-digits"),
        pytest.param(b"0x5\r\nhello\r\n", id="0x-prefix"),
        pytest.param(b"-5\r\nhello\r\n", id="negative"),
        pytest.param(b"5 5\r\nhello\r\n", id="inner-space"),
        pytest.param(b"5\r\nhelloXY\r\n", id="data-without-crlf"),
        pytest.param(b"5\r\nhello\r\nzz\r\n", id="bad-second-size"),
        pytest.param(b"5\r\nhello5\r\nworld\r\n", id="next-chunk-glued"),
    ],
)
def test_chunked_malformed_framing_raises(raw: bytes) -> None:
    # Whole, and byte by byte: the error must not depend on how the bytes arrive.
    with pytest.raises(http.client.HTTPException, match="malformed"):
        ChunkedDecoder().feed(raw)
    with pytest.raises(http.client.HTTPException, match="malformed"):
        feed_bytewise(ChunkedDecoder(), raw)


def test_chunked_sixteen_hex_digits_are_allowed() -> None:
    decoder = ChunkedDecoder()
    assert decoder.feed(chunk(b"hello", "0" * 15 + "5") + LAST) == b"hello"
    assert decoder.done


def test_chunked_payload_before_an_error_is_returned_by_earlier_feeds() -> None:
    decoder = ChunkedDecoder()
    assert decoder.feed(chunk(b"good")) == b"good"
    with pytest.raises(http.client.HTTPException):
        decoder.feed(b"nope\r\n")


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"", id="nothing"),
        pytest.param(b"5", id="in-size-line"),
        pytest.param(b"5\r\nhel", id="in-data"),
        pytest.param(b"5\r\nhello", id="before-data-crlf"),
        pytest.param(b"5\r\nhello\r\n", id="between-chunks"),
        pytest.param(b"5\r\nhello\r\n0\r\n", id="before-trailer-end"),
        pytest.param(b"5\r\nhello\r\n0\r\nTrailer: x\r\n", id="in-trailers"),
        pytest.param(b"5\r\nhello\r\n0\r\n\r", id="half-final-crlf"),
    ],
)
def test_chunked_eof_before_the_last_chunk_raises_incomplete_read(raw: bytes) -> None:
    decoder = ChunkedDecoder()
    decoder.feed(raw)
    assert not decoder.done
    with pytest.raises(http.client.IncompleteRead):
        decoder.eof()


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"5;" + b"e" * 1100, id="size-line"),
        pytest.param(b"5\r\nhello\r\n0\r\nTrailer: " + b"t" * 1100, id="trailer-line"),
        pytest.param(b"5\r\nhello" + b" " * 1100, id="chunk-terminator"),
    ],
)
def test_chunked_over_long_pending_framing_raises(raw: bytes) -> None:
    with pytest.raises(http.client.HTTPException, match="malformed chunk framing"):
        ChunkedDecoder().feed(raw)
    with pytest.raises(http.client.HTTPException, match="malformed chunk framing"):
        feed_bytewise(ChunkedDecoder(), raw)


def test_chunked_long_but_bounded_framing_lines_are_fine_in_pieces() -> None:
    raw = chunk(b"hello", "5;" + "e" * 900) + b"0\r\nTrailer: " + b"t" * 900 + b"\r\n\r\n"
    decoder = ChunkedDecoder()
    assert b"".join(decoder.feed(raw[i : i + 7]) for i in range(0, len(raw), 7)) == b"hello"
    assert decoder.done


# -- IdentityDecoder -----------------------------------------------------------------------


def test_identity_with_a_length_stops_there() -> None:
    decoder = IdentityDecoder(10)
    assert not decoder.done
    assert decoder.feed(b"0123") == b"0123"
    assert not is_done(decoder)
    assert decoder.feed(b"456789EXTRA") == b"456789"
    assert is_done(decoder)
    assert decoder.feed(b"more") == b""
    decoder.eof()


def test_identity_with_a_length_split_at_every_position() -> None:
    raw = b"0123456789" + b"trailing garbage"
    for cut in range(len(raw) + 1):
        decoder = IdentityDecoder(10)
        assert decoder.feed(raw[:cut]) + decoder.feed(raw[cut:]) == b"0123456789"
        assert decoder.done


def test_identity_zero_length_is_done_at_once() -> None:
    decoder = IdentityDecoder(0)
    assert decoder.done
    assert decoder.feed(b"anything") == b""
    decoder.eof()


@pytest.mark.parametrize("fed", [b"", b"012", b"012345678"])
def test_identity_eof_before_the_length_raises_incomplete_read(fed: bytes) -> None:
    decoder = IdentityDecoder(10)
    decoder.feed(fed)
    with pytest.raises(http.client.IncompleteRead) as caught:
        decoder.eof()
    assert caught.value.expected == 10 - len(fed)


def test_identity_without_a_length_passes_everything_until_eof() -> None:
    decoder = IdentityDecoder(None)
    data = bytes(range(256)) * 40
    assert decoder.feed(data) == data
    assert decoder.feed(b"") == b""
    assert decoder.feed(b"0\r\n\r\n") == b"0\r\n\r\n"  # no framing to interpret
    assert not decoder.done
    decoder.eof()


# -- a scripted HTTP server ----------------------------------------------------------------

Script = Callable[[socket.socket], None]


class ScriptedServer:
    """Accepts one connection, reads the request head, then runs ``script`` on it."""

    def __init__(self, script: Script, tls: ssl.SSLContext | None = None) -> None:
        self._script = script
        self._tls = tls
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(IO_TIMEOUT)
        self.port: int = self._listener.getsockname()[1]
        self.requests: list[bytes] = []
        self.errors: list[BaseException] = []
        self.finished = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="scripted-http", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"{'https' if self._tls else 'http'}://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        try:
            raw, _ = self._listener.accept()
        except OSError as exc:
            self.errors.append(exc)
            self.finished.set()
            return
        conn = raw
        try:
            raw.settimeout(IO_TIMEOUT)
            if self._tls is not None:
                conn = self._tls.wrap_socket(raw, server_side=True)
            self.requests.append(read_request(conn))
            self._script(conn)
        except Exception as exc:
            self.errors.append(exc)
        finally:
            conn.close()
            raw.close()
            self.finished.set()

    def close(self) -> None:
        self._listener.close()
        self._thread.join(IO_TIMEOUT)
        assert not self._thread.is_alive(), "the scripted server did not finish"


@contextlib.contextmanager
def serving(script: Script, tls: ssl.SSLContext | None = None) -> Iterator[ScriptedServer]:
    server = ScriptedServer(script, tls)
    try:
        yield server
    finally:
        server.close()


def read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        more = conn.recv(65536)
        if not more:
            break
        data += more
    return data


def until_closed(conn: socket.socket) -> None:
    """Keep the connection open until the client closes it."""
    with contextlib.suppress(OSError):
        while conn.recv(65536):
            pass


def answer(*writes: bytes, pause: float = 0.0, hold: bool = True) -> Script:
    """A script sending ``writes`` one by one, then holding the connection open."""

    def script(conn: socket.socket) -> None:
        for index, data in enumerate(writes):
            if index and pause:
                time.sleep(pause)
            conn.sendall(data)
        if hold:
            until_closed(conn)

    return script


def transport(
    url: str,
    *,
    read_timeout: float = IO_TIMEOUT,
    ssl_context: ssl.SSLContext | None = None,
) -> HttpTransport:
    return HttpTransport(
        url,
        KEY,
        connect_timeout=IO_TIMEOUT,
        read_timeout=read_timeout,
        user_agent=AGENT,
        ssl_context=ssl_context,
    )


def try_open(client: HttpTransport) -> None:
    """Open a stream that is expected to fail before its body."""
    with client.stream("/s", {}):
        pytest.fail("the stream was opened")


def read_body(
    opened: OpenStream, until: Callable[[bytes], bool] | None = None, *, first: bool = True
) -> bytes:
    """The payload: ``received`` (unless not ``first``), then reads until the body ends."""
    payload = opened.decoder.feed(opened.received) if first else b""
    while not opened.decoder.done and not (until is not None and until(payload)):
        data = opened.sock.recv(65536)
        if not data:
            opened.decoder.eof()
            break
        payload += opened.decoder.feed(data)
    return payload


# -- HttpTransport.stream ------------------------------------------------------------------


def test_stream_chunked_event_stream() -> None:
    script = answer(SSE_CHUNKED + chunk(EVENT_1), chunk(EVENT_2) + LAST, pause=0.05)
    with serving(script) as server, transport(server.url).stream("/s", {}) as opened:
        assert opened.headers["Content-Type"] == "text/event-stream"
        assert isinstance(opened.decoder, ChunkedDecoder)
        assert opened.read_timeout == IO_TIMEOUT
        # Head and first chunk were written at once: the chunk came with the head.
        assert opened.received.startswith(f"{len(EVENT_1):x}\r\n".encode())
        first = read_body(opened, until=lambda payload: b"\n\n" in payload)
        assert first == EVENT_1
        assert read_body(opened, first=False) == EVENT_2
        assert opened.decoder.done


def test_stream_content_length_body() -> None:
    body = EVENT_1 + EVENT_2
    response = head(
        "200 OK", "Content-Type: text/event-stream; charset=utf-8", f"Content-Length: {len(body)}"
    )
    script = answer(response + body[:10], body[10:] + b"IGNORED", pause=0.05)
    with serving(script) as server, transport(server.url).stream("/s", {}) as opened:
        assert isinstance(opened.decoder, IdentityDecoder)
        assert read_body(opened) == body
        assert opened.decoder.done


def test_stream_close_delimited_body() -> None:
    response = head("200 OK", "Content-Type: text/event-stream", "Connection: close")
    script = answer(response, EVENT_1, EVENT_2, pause=0.05, hold=False)
    with serving(script) as server, transport(server.url).stream("/s", {}) as opened:
        assert isinstance(opened.decoder, IdentityDecoder)
        assert read_body(opened) == EVENT_1 + EVENT_2
        assert not opened.decoder.done  # it ended with the connection, which is allowed


@pytest.mark.parametrize("separate", [False, True], ids=["one-write", "separate-writes"])
def test_stream_skips_informational_answers(separate: bool) -> None:
    informational = head("100 Continue") + head("103 Early Hints", "Link: </a.css>")
    writes = (informational, SSE_CHUNKED) if separate else (informational + SSE_CHUNKED,)
    script = answer(*writes, chunk(EVENT_1) + LAST, pause=0.05)
    with serving(script) as server, transport(server.url).stream("/s", {}) as opened:
        assert opened.headers["Content-Type"] == "text/event-stream"
        assert opened.headers.get("Link") is None  # the 103's fields are not the answer's
        assert read_body(opened) == EVENT_1


@pytest.mark.parametrize("status", [401, 403])
def test_stream_rejected_key(status: int) -> None:
    with (
        serving(answer(head(f"{status} Nope", "Content-Length: 0"))) as server,
        pytest.raises(KeyRejectedError) as caught,
    ):
        try_open(transport(server.url))
    assert caught.value.status == status


def test_stream_unavailable_with_retry_after() -> None:
    response = head("503 Service Unavailable", "Retry-After: 7", "Content-Length: 0")
    with serving(answer(response)) as server, pytest.raises(HttpError) as caught:
        try_open(transport(server.url))
    assert type(caught.value) is HttpError
    assert caught.value.status == 503
    assert caught.value.retry_after == "7"


def test_stream_other_status_without_retry_after() -> None:
    with (
        serving(answer(head("404 Not Found", "Content-Length: 0"))) as server,
        pytest.raises(HttpError) as caught,
    ):
        try_open(transport(server.url))
    assert (caught.value.status, caught.value.retry_after) == (404, None)


@pytest.mark.parametrize("content_type", [None, "application/json", "text/plain"])
def test_stream_not_an_event_stream(content_type: str | None) -> None:
    fields = ["Content-Length: 2"] + ([f"Content-Type: {content_type}"] if content_type else [])
    with (
        serving(answer(head("200 OK", *fields) + b"{}")) as server,
        pytest.raises(NotAStreamError, match="text/event-stream"),
    ):
        try_open(transport(server.url))


@pytest.mark.parametrize(
    "status_line",
    [b"garbage", b"HTTP/2 200 OK", b"HTTP/1.1 abc OK", b"HTTP/1.1 20 OK", b"ICY 200 OK"],
)
def test_stream_garbage_status_line(status_line: bytes) -> None:
    with (
        serving(answer(status_line + b"\r\nContent-Type: text/event-stream\r\n\r\n")) as server,
        pytest.raises(http.client.HTTPException) as caught,
    ):
        try_open(transport(server.url))
    assert isinstance(caught.value, http.client.BadStatusLine)


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        (["Transfer-Encoding: gzip"], "unsupported Transfer-Encoding"),
        (["Content-Length: ten"], "malformed Content-Length"),
    ],
)
def test_stream_unusable_framing(fields: list[str], match: str) -> None:
    response = head("200 OK", "Content-Type: text/event-stream", *fields)
    with serving(answer(response)) as server, pytest.raises(http.client.HTTPException, match=match):
        try_open(transport(server.url))


def padded_head(size: int) -> bytes:
    """A 200 SSE head of exactly ``size`` bytes (blank line included), 2 KiB per field."""
    fields = ["Content-Type: text/event-stream"]
    while True:
        short = len(head("200 OK", *fields, "X-Pad-00: "))
        if size - short <= 2000:
            break
        fields.append(f"X-Pad-{len(fields):02d}: " + "p" * 2000)
    fields.append(f"X-Pad-{len(fields):02d}: " + "p" * (size - short))
    assert len(fields) < 100  # http.client's own limit is not what is tested
    response = head("200 OK", *fields)
    assert len(response) == size
    return response


def head_writes(response: bytes, parts: int) -> tuple[bytes, ...]:
    """The head in one write, or in two: its first 64 KiB, then the rest."""
    return (response,) if parts == 1 else (response[:65536], response[65536:])


@pytest.mark.parametrize("parts", [1, 2])
@pytest.mark.parametrize("size", [64 * 1024 + 64, 150 * 1024])
def test_stream_head_over_the_limit(size: int, parts: int) -> None:
    script = answer(*head_writes(padded_head(size), parts), pause=0.2)
    with (
        serving(script) as server,
        pytest.raises(http.client.HTTPException, match="response head over 65536 bytes"),
    ):
        try_open(transport(server.url))


@pytest.mark.parametrize("parts", [1, 2])
def test_stream_head_under_the_limit(parts: int) -> None:
    response = padded_head(64 * 1024 - 64)
    script = answer(*head_writes(response, parts), EVENT_1, pause=0.2, hold=False)
    with serving(script) as server, transport(server.url).stream("/s", {}) as opened:
        assert opened.headers["Content-Type"] == "text/event-stream"
        assert len(opened.headers) > 30
        assert read_body(opened) == EVENT_1


def test_stream_server_closes_before_the_head() -> None:
    with serving(answer(hold=False)) as server, pytest.raises(TransportError) as caught:
        try_open(transport(server.url))
    assert isinstance(caught.value, http.client.RemoteDisconnected)


def test_stream_server_closes_in_the_middle_of_the_head() -> None:
    with (
        serving(answer(b"HTTP/1.1 200 OK\r\nContent-Ty", hold=False)) as server,
        pytest.raises(TransportError),
    ):
        try_open(transport(server.url))


def test_stream_silent_server_times_out() -> None:
    started = time.monotonic()
    with serving(answer()) as server, pytest.raises(TransportError) as caught:
        try_open(transport(server.url, read_timeout=0.2))
    assert isinstance(caught.value, TimeoutError)
    assert time.monotonic() - started < 3.0


def test_stream_connection_refused() -> None:
    with socket.create_server(("127.0.0.1", 0)) as placeholder:
        port = placeholder.getsockname()[1]
    with pytest.raises(TransportError) as caught:
        try_open(transport(f"http://127.0.0.1:{port}"))
    assert isinstance(caught.value, ConnectionRefusedError)


def test_stream_request_line_and_headers() -> None:
    with serving(answer(SSE_CHUNKED + LAST)) as server:
        client = transport(f"http://127.0.0.1:{server.port}/prefix/")
        extra = {"Accept": "text/event-stream", "Last-Event-ID": "42"}
        with client.stream("/sdk/v1/stream", extra) as opened:
            assert read_body(opened) == b""
    (request,) = server.requests
    request_line, _, fields = request.partition(b"\r\n")
    assert request_line == b"GET /prefix/sdk/v1/stream HTTP/1.1"
    assert request.endswith(b"\r\n\r\n")
    headers = http.client.parse_headers(io.BytesIO(fields + b"\r\n\r\n"))
    assert headers["Host"] == f"127.0.0.1:{server.port}"
    assert headers["Authorization"] == f"Bearer {KEY}"
    assert headers["User-Agent"] == AGENT
    assert headers["Last-Event-ID"] == "42"
    assert headers["Accept"] == "text/event-stream"
    assert headers.get_all("Host") == [f"127.0.0.1:{server.port}"]


def test_stream_without_a_path_prefix() -> None:
    with serving(answer(SSE_CHUNKED + LAST)) as server:
        client = transport(server.url)
        with client.stream("/sdk/v1/stream", {}) as opened:
            assert read_body(opened) == b""
    assert server.requests[0].startswith(b"GET /sdk/v1/stream HTTP/1.1\r\n")


def test_abort_before_stream() -> None:
    with serving(answer(SSE_CHUNKED + chunk(EVENT_1))) as server:
        client = transport(server.url)
        client.abort()
        with pytest.raises(StreamAbortedError):
            try_open(client)
        assert server.finished.wait(IO_TIMEOUT)
    assert server.requests == [b""]  # connected, but no request was sent


def test_abort_during_a_stream_ends_it_and_later_streams() -> None:
    with serving(answer(SSE_CHUNKED + chunk(EVENT_1))) as server:
        client = transport(server.url)
        payload: list[bytes] = []
        with client.stream("/s", {}) as opened:
            timer = threading.Timer(0.2, client.abort)
            timer.start()
            started = time.monotonic()
            # The body is chunked and never finished: the shut-down socket reads as EOF,
            # which the chunked framing does not allow.
            with pytest.raises(http.client.IncompleteRead):
                StreamReactor().read(opened, payload.append)
            assert time.monotonic() - started < 1.5
            timer.join(IO_TIMEOUT)
        assert b"".join(payload) == EVENT_1
        with pytest.raises(StreamAbortedError):
            try_open(client)


def test_socket_closed_after_the_block() -> None:
    with serving(answer(SSE_CHUNKED + chunk(EVENT_1))) as server:
        with transport(server.url).stream("/s", {}) as opened:
            sock = opened.sock
            assert sock.fileno() != -1
        assert sock.fileno() == -1
        assert server.finished.wait(IO_TIMEOUT)  # the server saw the connection end


def test_socket_closed_when_the_block_raises() -> None:
    with serving(answer(SSE_CHUNKED)) as server:
        socks: list[socket.socket] = []

        def fail_inside() -> None:
            with transport(server.url).stream("/s", {}) as opened:
                socks.append(opened.sock)
                raise LookupError

        with pytest.raises(LookupError):
            fail_inside()
        assert socks[0].fileno() == -1
        assert server.finished.wait(IO_TIMEOUT)


# -- TLS -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return Certificate(tmp_path_factory.mktemp("tls"))


def test_tls_stream_read_by_the_reactor(certificate: Certificate) -> None:
    big = b"event: snapshot\ndata: " + b"x" * 150_000 + b"\n\n"  # several TLS records
    events = [EVENT_1, EVENT_2, big, b": ping\n\n"]
    second = chunk(EVENT_2)
    writes = [
        SSE_CHUNKED + chunk(EVENT_1),
        second[:7],  # a chunk split across writes (and TLS records)
        second[7:],
        chunk(big),
        chunk(events[3]) + LAST,
    ]
    tls = certificate.server_context()
    with serving(answer(*writes, pause=0.05), tls=tls) as server:
        client = transport(server.url, read_timeout=3.0, ssl_context=certificate.client_context())
        received: list[bytes] = []
        with client.stream("/sdk/v1/stream", {}) as opened:
            assert isinstance(opened.sock, ssl.SSLSocket)
            assert opened.sock.version() in ("TLSv1.2", "TLSv1.3")
            started = time.monotonic()
            StreamReactor().read(opened, received.append)
            assert time.monotonic() - started < 3.0
            assert opened.decoder.done
        assert server.finished.wait(IO_TIMEOUT)
    assert b"".join(received) == b"".join(events)
    assert len(received) >= 4  # delivered as it arrived, not in one piece at the end
    assert server.requests[0].startswith(b"GET /sdk/v1/stream HTTP/1.1\r\n")
    assert not server.errors


def test_tls_untrusted_certificate_is_refused(certificate: Certificate) -> None:
    tls = certificate.server_context()
    with serving(answer(SSE_CHUNKED), tls=tls) as server:
        untrusted = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # trusts nothing
        with pytest.raises(TransportError) as caught:
            try_open(transport(server.url, ssl_context=untrusted))
    assert isinstance(caught.value, ssl.SSLCertVerificationError)
