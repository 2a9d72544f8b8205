"""One I/O thread per process reading the body of every client's event stream.

Each :class:`~lockgate.sdk.networked.Client` opens its stream on its own sync thread
(connect, request, status and headers, all bounded by timeouts) and then hands the socket
to the process's :class:`StreamReactor`, waiting in :meth:`StreamReactor.read` until the
stream ends. The reactor waits for data on every such socket at once (``selectors``,
epoll on Linux), reads whatever arrived without blocking, undoes the HTTP framing and
passes the payload to the stream's callback, which parses events and applies them.

So a change reaching many clients in one process wakes one thread, not one per client,
and the sockets that became readable together are served in one pass. Callbacks (and the
update and state listeners they call) run on the reactor thread: one slow listener delays
the other clients of the same process, so listeners must be short.

A stream also ends, with :class:`TimeoutError`, when nothing arrived for its
``read_timeout`` (the heartbeat watchdog). Standard library only.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable

from lockgate.sdk.transport import OpenStream

__all__ = ["StreamReactor", "shared_reactor"]

_READ = 64 * 1024
_MAX_SWEEP = 1.0
"""Longest wait between two checks of the read timeouts."""

_log = logging.getLogger("lockgate.sdk")


class _Reader:
    __slots__ = (
        "decoder",
        "done",
        "error",
        "last",
        "on_data",
        "received",
        "sock",
        "timeout",
        "tls",
    )

    def __init__(self, stream: OpenStream, on_data: Callable[[bytes], None]) -> None:
        self.sock = stream.sock
        self.received = stream.received
        self.decoder = stream.decoder
        self.timeout = stream.read_timeout
        self.tls = stream.sock if isinstance(stream.sock, ssl.SSLSocket) else None
        self.on_data = on_data
        self.last = time.monotonic()
        self.done = threading.Event()
        self.error: BaseException | None = None


class StreamReactor:
    """Reads many streams on one daemon thread, started on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._incoming: list[_Reader] = []
        self._readers: set[_Reader] = set()
        self._thread: threading.Thread | None = None
        self._selector: selectors.BaseSelector | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None

    def read(self, stream: OpenStream, on_data: Callable[[bytes], None]) -> None:
        """Feed the stream's payload to ``on_data`` until it ends; blocks the caller.

        Returns when the body ended cleanly or the connection was closed where the
        framing allows it (for instance shut down by ``HttpTransport.abort``). Raises
        what ``on_data`` raised, :class:`TimeoutError` after ``read_timeout`` of silence,
        or the connection's error (``OSError``, ``http.client.HTTPException``). Must not
        be called on the reactor thread.
        """
        reader = _Reader(stream, on_data)
        with self._lock:
            self._incoming.append(reader)
            if self._thread is None:
                self._start()
        self._wake()
        reader.done.wait()
        self._raise(reader)

    def on_thread(self) -> bool:
        """Whether the caller runs on this reactor's thread (in a callback)."""
        return self._thread is threading.current_thread()

    @staticmethod
    def _raise(reader: _Reader) -> None:
        if reader.error is not None:
            error, reader.error = reader.error, None
            raise error

    # -- the thread ---------------------------------------------------------------------

    def _start(self) -> None:
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        thread = threading.Thread(target=self._run, name="lockgate-streams", daemon=True)
        self._thread = thread
        thread.start()

    def _wake(self) -> None:
        wake = self._wake_w
        if wake is not None:
            with contextlib.suppress(OSError):  # full (a wake-up is pending anyway) or closed
                wake.send(b"\0")

    def _run(self) -> None:
        selector = self._selector
        assert selector is not None
        try:
            self._loop(selector)
        except BaseException as exc:  # a bug here must not leave sync threads waiting forever
            _log.exception("the lockgate stream reader stopped unexpectedly")
            self._crashed(selector, exc)

    def _loop(self, selector: selectors.BaseSelector) -> None:
        next_sweep = 0.0
        sweep_every = _MAX_SWEEP
        while True:
            ready = selector.select(max(0.0, next_sweep - time.monotonic()))
            now = time.monotonic()
            for key, _events in ready:
                reader = key.data
                if reader is None:
                    sweep_every = min(sweep_every, self._admit(selector, now))
                    next_sweep = min(next_sweep, now + sweep_every)
                elif not reader.done.is_set():
                    self._readable(selector, reader, now)
            if now >= next_sweep:
                self._sweep(selector, now)
                next_sweep = now + sweep_every
                if not self._readers:
                    sweep_every = _MAX_SWEEP

    def _admit(self, selector: selectors.BaseSelector, now: float) -> float:
        """Register the streams handed over since the last pass; the sweep period."""
        assert self._wake_r is not None
        with contextlib.suppress(BlockingIOError, InterruptedError):
            while self._wake_r.recv(4096):
                pass
        with self._lock:
            incoming, self._incoming = self._incoming, []
        every = _MAX_SWEEP
        for reader in incoming:
            reader.last = now
            if reader.received:  # body bytes that came with the head go first
                received, reader.received = reader.received, b""
                self._consume(reader, received)
                if reader.done.is_set():
                    continue
            try:
                reader.sock.setblocking(False)
                selector.register(reader.sock, selectors.EVENT_READ, reader)
            except (OSError, ValueError) as exc:  # closed meanwhile
                reader.error = exc
                reader.done.set()
                continue
            self._readers.add(reader)
            every = min(every, max(0.01, reader.timeout / 4))
        return every

    def _readable(self, selector: selectors.BaseSelector, reader: _Reader, now: float) -> None:
        try:
            while True:
                data = reader.sock.recv(_READ)
                if not data:
                    reader.decoder.eof()
                    self._finish(selector, reader, None)
                    return
                reader.last = now
                self._consume(reader, data)
                if reader.done.is_set():
                    self._forget(selector, reader)
                    return
                # A full read may have left more behind; TLS may hold decrypted bytes.
                if len(data) < _READ and not (reader.tls is not None and reader.tls.pending()):
                    return
        except (BlockingIOError, InterruptedError, ssl.SSLWantReadError):
            return
        except ssl.SSLWantWriteError:
            return  # TLS wants to write first; it retries on the next readable event
        except Exception as exc:
            self._finish(selector, reader, exc)

    @staticmethod
    def _consume(reader: _Reader, data: bytes) -> None:
        """Unframe ``data`` and pass it on; ends the reader on error or end of body."""
        try:
            payload = reader.decoder.feed(data)
            if payload:
                reader.on_data(payload)
        except Exception as exc:
            reader.error = exc
            reader.done.set()
            return
        if reader.decoder.done:
            reader.done.set()

    def _sweep(self, selector: selectors.BaseSelector, now: float) -> None:
        for reader in [r for r in self._readers if now - r.last > r.timeout]:
            error = TimeoutError(f"nothing received for {reader.timeout:g} s")
            self._finish(selector, reader, error)

    def _finish(
        self, selector: selectors.BaseSelector, reader: _Reader, error: BaseException | None
    ) -> None:
        reader.error = error
        self._forget(selector, reader)

    def _forget(self, selector: selectors.BaseSelector, reader: _Reader) -> None:
        self._readers.discard(reader)
        with contextlib.suppress(KeyError, ValueError, OSError):
            selector.unregister(reader.sock)
        reader.done.set()

    def _crashed(self, selector: selectors.BaseSelector, exc: BaseException) -> None:
        with self._lock:
            readers = list(self._readers) + self._incoming
            self._readers.clear()
            self._incoming = []
            self._thread = None
            self._selector = None
            wake = (self._wake_r, self._wake_w)
            self._wake_r = self._wake_w = None
        with contextlib.suppress(OSError):
            selector.close()
        for end in wake:
            if end is not None:
                end.close()
        for reader in readers:
            reader.error = RuntimeError(f"the stream reader failed: {exc!r}")
            reader.done.set()


_shared: StreamReactor | None = None
_shared_lock = threading.Lock()


def shared_reactor() -> StreamReactor:
    """The process's reactor, created on first use (and anew in a forked child)."""
    global _shared  # noqa: PLW0603 - one reactor per process, by design
    with _shared_lock:
        if _shared is None:
            _shared = StreamReactor()
        return _shared


def _forget_after_fork() -> None:
    global _shared, _shared_lock  # noqa: PLW0603
    _shared = None  # the parent's thread does not exist in the child
    _shared_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)
