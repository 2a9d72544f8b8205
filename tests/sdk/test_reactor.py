"""The stream reactor: one thread reading many stream bodies over real sockets.

Each stream is one end of a ``socket.socketpair()`` wrapped in an ``OpenStream``; the test
writes framed bytes into the other end. Every ``read`` runs on a thread of its own, and
every wait is bounded.
"""

from __future__ import annotations

import contextlib
import gc
import http.client
import os
import signal
import socket
import struct
import threading
import time
import warnings
from collections.abc import Callable, Iterator

import pytest

from lockgate.sdk.reactor import StreamReactor, shared_reactor
from lockgate.sdk.transport import BodyDecoder, ChunkedDecoder, IdentityDecoder, OpenStream

WAIT = 5.0
"""Longest wait for anything that should happen promptly."""


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


LAST = b"0\r\n\r\n"


class Pairs:
    """Socket pairs, all closed at the end of the test."""

    def __init__(self) -> None:
        self._sockets: list[socket.socket] = []

    def stream(
        self,
        decoder: BodyDecoder | None = None,
        *,
        received: bytes = b"",
        read_timeout: float = WAIT,
    ) -> tuple[OpenStream, socket.socket]:
        """An open stream over one end of a new pair, and the other end to write to."""
        ours, theirs = socket.socketpair()
        self._sockets += [ours, theirs]
        decoder = ChunkedDecoder() if decoder is None else decoder
        return OpenStream(ours, http.client.HTTPMessage(), decoder, received, read_timeout), theirs

    def close(self) -> None:
        for sock in self._sockets:
            sock.close()


@pytest.fixture
def pairs() -> Iterator[Pairs]:
    made = Pairs()
    try:
        yield made
    finally:
        made.close()


@pytest.fixture
def reactor(pairs: Pairs) -> Iterator[StreamReactor]:
    """A reactor of the test's own, checked to still serve a new stream afterwards."""
    made = StreamReactor()
    yield made
    # This also starts the reactor's thread if the test did not, which keeps it alive:
    # see test_unused_reactor_releases_its_sockets.
    stream, peer = pairs.stream()
    peer.sendall(chunk(b"still serving") + LAST)
    reading = Reading(made, stream)
    reading.returned()
    assert reading.payload == b"still serving"


class Reading:
    """``reactor.read(stream, ...)`` on a thread of its own, and what it delivered."""

    def __init__(
        self,
        reactor: StreamReactor,
        stream: OpenStream,
        on_data: Callable[[bytes], None] | None = None,
    ) -> None:
        self.reactor = reactor
        self.stream = stream
        self._extra = on_data
        self.cond = threading.Condition()
        self.chunks: list[bytes] = []
        self.callback_threads: set[int] = set()
        self.on_thread_in_callback: set[bool] = set()
        self.caller: int | None = None
        self.on_thread_in_caller: set[bool] = set()
        self.error: BaseException | None = None
        self.elapsed: float | None = None
        self._thread = threading.Thread(target=self._run, name="reading", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        self.caller = threading.get_ident()
        self.on_thread_in_caller.add(self.reactor.on_thread())
        started = time.monotonic()
        try:
            self.reactor.read(self.stream, self._on_data)
        except BaseException as exc:
            self.error = exc
        finally:
            self.on_thread_in_caller.add(self.reactor.on_thread())
            with self.cond:
                self.elapsed = time.monotonic() - started
                self.cond.notify_all()

    def _on_data(self, data: bytes) -> None:
        with self.cond:
            self.chunks.append(data)
            self.callback_threads.add(threading.get_ident())
            self.on_thread_in_callback.add(self.reactor.on_thread())
            self.cond.notify_all()
        if self._extra is not None:
            self._extra(data)

    @property
    def payload(self) -> bytes:
        with self.cond:
            return b"".join(self.chunks)

    def wait_payload(self, expected: bytes, timeout: float = WAIT) -> None:
        with self.cond:
            arrived = self.cond.wait_for(lambda: b"".join(self.chunks) == expected, timeout)
        assert arrived, f"payload {self.payload!r} is not {expected!r}"

    def ended(self, timeout: float = WAIT) -> float:
        """How long ``read`` took; fails if it is still running after ``timeout``."""
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "read() did not return"
        assert self.elapsed is not None
        return self.elapsed

    def returned(self, timeout: float = WAIT) -> float:
        """Like :meth:`ended`, and ``read`` returned without raising."""
        elapsed = self.ended(timeout)
        assert self.error is None, f"read() raised {self.error!r}"
        return elapsed

    @property
    def running(self) -> bool:
        return self._thread.is_alive()


# -- many streams, one thread --------------------------------------------------------------


def test_many_streams_on_one_reactor_thread(reactor: StreamReactor, pairs: Pairs) -> None:
    count, parts = 50, 6
    decoders: list[Callable[[], BodyDecoder]] = [
        ChunkedDecoder,
        lambda: IdentityDecoder(None),
        lambda: IdentityDecoder(parts * 8),
    ]
    streams = [pairs.stream(decoders[i % 3]()) for i in range(count)]
    readings = [Reading(reactor, stream) for stream, _ in streams]

    def part(stream: int, index: int) -> bytes:
        return f"{stream:03d}:{index:03d};".encode()  # 8 bytes

    def frame(stream: int, data: bytes) -> bytes:
        return chunk(data) if stream % 3 == 0 else data

    half = parts // 2
    for index in range(half):
        for number, (_, peer) in enumerate(streams):
            peer.sendall(frame(number, part(number, index)))
    # Every stream is registered and served at the same time: all first halves arrive.
    for number, reading in enumerate(readings):
        reading.wait_payload(b"".join(part(number, i) for i in range(half)))
    assert all(reading.running for reading in readings)
    for index in range(half, parts):
        for number, (_, peer) in enumerate(streams):
            peer.sendall(frame(number, part(number, index)))
    for number, (_, peer) in enumerate(streams):
        if number % 3 == 0:
            peer.sendall(LAST)
        elif number % 3 == 1:
            peer.shutdown(socket.SHUT_WR)  # a body that ends with the connection
        # number % 3 == 2: a sized body, complete after its last part

    callback_threads: set[int] = set()
    for number, reading in enumerate(readings):
        reading.returned()
        assert reading.payload == b"".join(part(number, i) for i in range(parts))
        callback_threads |= reading.callback_threads
        assert reading.on_thread_in_callback == {True}
        assert reading.on_thread_in_caller == {False}
    assert len(callback_threads) == 1  # a single reactor thread ran every callback
    callers = {reading.caller for reading in readings}
    assert len(callers) == count
    assert callback_threads.isdisjoint(callers)
    assert threading.get_ident() not in callback_threads
    assert not reactor.on_thread()


def test_two_reactors_use_two_threads(pairs: Pairs) -> None:
    first, second = StreamReactor(), StreamReactor()
    (stream_a, peer_a), (stream_b, peer_b) = pairs.stream(), pairs.stream()
    reading_a, reading_b = Reading(first, stream_a), Reading(second, stream_b)
    peer_a.sendall(chunk(b"a") + LAST)
    peer_b.sendall(chunk(b"b") + LAST)
    reading_a.returned()
    reading_b.returned()
    assert (reading_a.payload, reading_b.payload) == (b"a", b"b")
    assert reading_a.callback_threads.isdisjoint(reading_b.callback_threads)


# -- bytes received with the head ----------------------------------------------------------


def test_received_bytes_come_first(reactor: StreamReactor, pairs: Pairs) -> None:
    # The head's read brought the first chunk and half of the second one.
    received = chunk(b"first ") + b"7\r\nsec"
    stream, peer = pairs.stream(received=received)
    peer.sendall(b"ond \r\n" + chunk(b"third") + LAST)  # already waiting in the socket
    reading = Reading(reactor, stream)
    reading.returned()
    assert reading.payload == b"first second third"
    assert reading.chunks[0] == b"first sec"
    assert reading.on_thread_in_callback == {True}  # those too, on the reactor's thread


def test_received_bytes_that_complete_the_body(reactor: StreamReactor, pairs: Pairs) -> None:
    stream, peer = pairs.stream(received=chunk(b"all of it") + LAST)
    peer.sendall(b"NOT PART OF THE BODY")
    reading = Reading(reactor, stream)
    reading.returned()
    assert reading.payload == b"all of it"
    stream.sock.settimeout(WAIT)
    assert stream.sock.recv(100) == b"NOT PART OF THE BODY"  # the socket was left alone


def test_received_bytes_rejected_by_on_data(reactor: StreamReactor, pairs: Pairs) -> None:
    stream, _peer = pairs.stream(received=chunk(b"bad"))

    def on_data(data: bytes) -> None:
        raise ValueError(data)

    reading = Reading(reactor, stream, on_data)
    reading.ended()
    assert isinstance(reading.error, ValueError)
    assert reading.error.args == (b"bad",)


# -- read timeouts -------------------------------------------------------------------------


def test_silent_stream_times_out_while_another_keeps_working(
    reactor: StreamReactor, pairs: Pairs
) -> None:
    silent, _silent_peer = pairs.stream(read_timeout=0.2)
    busy, busy_peer = pairs.stream(read_timeout=0.5)
    silent_reading, busy_reading = Reading(reactor, silent), Reading(reactor, busy)

    sent = b""
    deadline = time.monotonic() + 1.5  # three times the busy stream's read timeout
    index = 0
    while time.monotonic() < deadline:
        data = b"tick %d;" % index
        busy_peer.sendall(chunk(data))
        sent += data
        index += 1
        time.sleep(0.05)

    elapsed = silent_reading.ended()
    assert isinstance(silent_reading.error, TimeoutError)
    assert 0.2 <= elapsed < 2.5
    assert silent_reading.chunks == []
    # The busy stream, fed more often than its read timeout, is still open and current.
    busy_reading.wait_payload(sent)
    assert busy_reading.running
    busy_peer.sendall(chunk(b"end") + LAST)
    busy_reading.returned()
    assert busy_reading.payload == sent + b"end"


def test_data_that_stops_then_times_out(reactor: StreamReactor, pairs: Pairs) -> None:
    stream, peer = pairs.stream(read_timeout=0.3)
    reading = Reading(reactor, stream)
    peer.sendall(chunk(b"one"))
    reading.wait_payload(b"one")
    started = time.monotonic()
    reading.ended()
    assert isinstance(reading.error, TimeoutError)
    assert 0.25 <= time.monotonic() - started < 2.5


# -- callback errors -----------------------------------------------------------------------


def test_on_data_error_goes_to_the_caller_only(reactor: StreamReactor, pairs: Pairs) -> None:
    failing, failing_peer = pairs.stream()
    healthy, healthy_peer = pairs.stream()
    boom = ValueError("boom")
    calls: list[bytes] = []

    def explode(data: bytes) -> None:
        calls.append(data)
        raise boom

    failing_reading = Reading(reactor, failing, explode)
    healthy_reading = Reading(reactor, healthy)
    healthy_peer.sendall(chunk(b"before "))
    healthy_reading.wait_payload(b"before ")

    failing_peer.sendall(chunk(b"x"))
    failing_reading.ended()
    assert failing_reading.error is boom
    assert calls == [b"x"]

    failing_peer.sendall(chunk(b"ignored"))  # the failed stream is no longer read
    healthy_peer.sendall(chunk(b"after") + LAST)
    healthy_reading.returned()
    assert healthy_reading.payload == b"before after"
    assert calls == [b"x"]


def test_base_exception_from_on_data_does_not_leave_the_caller_waiting(
    reactor: StreamReactor, pairs: Pairs
) -> None:
    # Not an Exception (SystemExit from a listener, say): the caller must still be told,
    # and the reactor must serve new streams afterwards.
    class Stop(BaseException):
        pass

    def stop(data: bytes) -> None:
        raise Stop

    stream, peer = pairs.stream()
    reading = Reading(reactor, stream, stop)
    peer.sendall(chunk(b"x"))
    reading.ended()
    assert isinstance(reading.error, Stop) or "Stop()" in str(reading.error)

    other, other_peer = pairs.stream()
    other_reading = Reading(reactor, other)
    other_peer.sendall(chunk(b"still served") + LAST)
    other_reading.returned()
    assert other_reading.payload == b"still served"


# -- ends ----------------------------------------------------------------------------------


def test_shutdown_from_another_thread_ends_read(reactor: StreamReactor, pairs: Pairs) -> None:
    stream, peer = pairs.stream(IdentityDecoder(None))
    reading = Reading(reactor, stream)
    peer.sendall(b"some data")
    reading.wait_payload(b"some data")
    started = time.monotonic()
    stream.sock.shutdown(socket.SHUT_RDWR)  # what HttpTransport.abort() does
    reading.returned()
    assert time.monotonic() - started < 1.0
    assert reading.payload == b"some data"


def test_shutdown_of_an_unfinished_chunked_body(reactor: StreamReactor, pairs: Pairs) -> None:
    stream, peer = pairs.stream(ChunkedDecoder())
    reading = Reading(reactor, stream)
    peer.sendall(chunk(b"event"))
    reading.wait_payload(b"event")
    started = time.monotonic()
    stream.sock.shutdown(socket.SHUT_RDWR)
    reading.ended()
    assert time.monotonic() - started < 1.0
    # Chunked framing does not allow the connection to end here: the caller is told so.
    assert isinstance(reading.error, http.client.IncompleteRead)


def test_chunked_body_ends_with_the_last_chunk(reactor: StreamReactor, pairs: Pairs) -> None:
    stream, peer = pairs.stream(ChunkedDecoder())
    reading = Reading(reactor, stream)
    peer.sendall(chunk(b"a"))
    reading.wait_payload(b"a")
    peer.sendall(chunk(b"b") + b"0\r\nTrailer: t\r\n\r\njunk after the body")
    reading.returned()  # the peer is still open: the framing ends the body
    assert reading.payload == b"ab"
    assert stream.decoder.done


def test_eof_in_the_middle_of_a_chunk(reactor: StreamReactor, pairs: Pairs) -> None:
    stream, peer = pairs.stream(ChunkedDecoder())
    reading = Reading(reactor, stream)
    peer.sendall(b"a\r\nhello")
    reading.wait_payload(b"hello")
    peer.close()
    reading.ended()
    assert isinstance(reading.error, http.client.IncompleteRead)
    assert reading.payload == b"hello"


def test_eof_before_a_sized_body_ends(reactor: StreamReactor, pairs: Pairs) -> None:
    stream, peer = pairs.stream(IdentityDecoder(10))
    reading = Reading(reactor, stream)
    peer.sendall(b"12345")
    peer.shutdown(socket.SHUT_WR)
    reading.ended()
    assert isinstance(reading.error, http.client.IncompleteRead)
    assert reading.payload == b"12345"


def test_malformed_framing_is_the_callers_error(reactor: StreamReactor, pairs: Pairs) -> None:
    stream, peer = pairs.stream(ChunkedDecoder())
    reading = Reading(reactor, stream)
    peer.sendall(chunk(b"ok"))
    reading.wait_payload(b"ok")
    peer.sendall(b"zz\r\n")
    reading.ended()
    assert isinstance(reading.error, http.client.HTTPException)
    assert reading.payload == b"ok"


def test_connection_reset_is_the_callers_error(reactor: StreamReactor) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname(), WAIT)
        server, _ = listener.accept()
    with client, server:
        stream = OpenStream(client, http.client.HTTPMessage(), ChunkedDecoder(), b"", WAIT)
        reading = Reading(reactor, stream)
        server.sendall(chunk(b"x"))
        reading.wait_payload(b"x")
        # Closing with unread data (or SO_LINGER 0) sends a reset instead of a FIN.
        server.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        server.close()
        reading.ended()
    assert isinstance(reading.error, (ConnectionResetError, http.client.IncompleteRead))


def test_closed_socket_is_refused_at_registration(reactor: StreamReactor, pairs: Pairs) -> None:
    stream, _peer = pairs.stream()
    stream.sock.close()
    reading = Reading(reactor, stream)
    reading.ended()
    assert isinstance(reading.error, (OSError, ValueError))


def test_large_body_in_many_reads(reactor: StreamReactor, pairs: Pairs) -> None:
    data = bytes(range(256)) * 4096  # 1 MiB, more than one read's worth
    stream, peer = pairs.stream(IdentityDecoder(len(data)))
    reading = Reading(reactor, stream)
    writer = threading.Thread(target=peer.sendall, args=(data,), daemon=True)
    writer.start()
    reading.returned()
    writer.join(WAIT)
    assert reading.payload == data
    assert len(reading.chunks) > 1


def test_unused_reactor_holds_no_sockets() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        StreamReactor()
        gc.collect()
    leaks = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert leaks == []


# -- the shared reactor --------------------------------------------------------------------


def test_shared_reactor_is_one_per_process(pairs: Pairs) -> None:
    shared = shared_reactor()
    assert shared is shared_reactor()
    assert isinstance(shared, StreamReactor)
    stream, peer = pairs.stream()
    reading = Reading(shared, stream)
    peer.sendall(chunk(b"shared") + LAST)
    reading.returned()
    assert reading.payload == b"shared"
    assert reading.on_thread_in_callback == {True}


def _child_check(parent: StreamReactor) -> int:
    """In the forked child: 0 if the shared reactor is new and works, else a reason."""
    child = shared_reactor()
    if child is parent:
        return 10
    if child is not shared_reactor():
        return 11
    ours, theirs = socket.socketpair()
    with ours, theirs:
        got: list[bytes] = []
        theirs.sendall(chunk(b"child") + LAST)
        stream = OpenStream(ours, http.client.HTTPMessage(), ChunkedDecoder(), b"", 2.0)
        child.read(stream, got.append)
        return 0 if got == [b"child"] else 12


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_shared_reactor_is_new_in_a_forked_child(pairs: Pairs) -> None:
    parent = shared_reactor()
    stream, peer = pairs.stream()
    reading = Reading(parent, stream)  # the parent's reactor thread is running
    peer.sendall(chunk(b"parent"))
    reading.wait_payload(b"parent")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit status
        status = 1
        try:
            status = _child_check(parent)
        finally:
            os._exit(status)

    deadline = time.monotonic() + WAIT
    waited, status = os.waitpid(pid, os.WNOHANG)
    while waited == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
        waited, status = os.waitpid(pid, os.WNOHANG)
    if waited == 0:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        pytest.fail("the forked child did not finish")
    assert os.waitstatus_to_exitcode(status) == 0

    # The parent's reactor is untouched by the fork.
    assert shared_reactor() is parent
    peer.sendall(LAST)
    reading.returned()
    assert reading.payload == b"parent"
