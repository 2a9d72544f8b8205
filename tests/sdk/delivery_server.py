"""A small, real, scriptable HTTP server speaking docs/delivery.md's SDK protocol.

Standard library only (``http.server``). It serves ``GET /sdk/v1/stream`` (SSE over
chunked HTTP/1.1: ``retry`` first, then a ``snapshot``, or on resume with
``Last-Event-ID`` a ``change`` or nothing), ``GET /sdk/v1/snapshot`` (ETag / 304) and
``POST /sdk/v1/events``, checks the bearer key, and records every request. Tests script
faults through its attributes and methods: statuses and ``Retry-After`` per endpoint, raw
bytes pushed into open streams, connections dropped mid-stream, the whole server
stopped and restarted on the same port with the same data.
"""

from __future__ import annotations

import json
import queue
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

JSON = dict[str, Any]
KEY = "lgs_test_key"

_CLOSE = object()  # end the stream cleanly (last chunk)
_DROP = object()  # end it abruptly (no last chunk: the client sees a truncated body)


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    at: float

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


def sse(event: str, data: str, event_id: int | str | None = None) -> bytes:
    """One SSE event; multi-line ``data`` becomes several ``data:`` lines."""
    lines = [f"event: {event}"]
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines += [f"data: {line}" for line in data.split("\n")]
    return ("\n".join(lines) + "\n\n").encode()


def change_between(old: JSON, new: JSON) -> JSON:
    """The ``change`` event body from ``old`` to ``new`` (null for removed keys)."""
    body: JSON = {"from": old["version"], "version": new["version"]}
    for part in ("flags", "segments"):
        before, after = old.get(part, {}), new.get(part, {})
        touched = {k: v for k, v in after.items() if before.get(k) != v}
        touched.update({k: None for k in before if k not in after})
        body[part] = touched
    return body


class _Stream:
    def __init__(self) -> None:
        self.outbox: queue.Queue[object] = queue.Queue()


class DeliveryServer:
    """The protocol's state plus one ``ThreadingHTTPServer`` that can stop and restart."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.tls = tls
        """Serve HTTPS with this server context (the handshake runs as each client connects)."""
        self.cond = threading.Condition()
        self.key = KEY
        self.current: JSON | None = None
        self.history: dict[int, JSON] = {}
        self.requests: list[Seen] = []
        self.events: list[JSON] = []
        self.status: dict[str, tuple[int, dict[str, str]]] = {}
        """Path → (status, headers) answered instead of the protocol (e.g. 503)."""
        self.hydrate = True
        """Send the protocol's first event on connect (off: tests script every byte)."""
        self.ping_interval: float | None = None
        self.streams: list[_Stream] = []
        self.opened = 0
        """Stream connections opened so far (that got past the status line)."""
        self.port = 0
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> DeliveryServer:
        handler = _handler_for(self)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        if self.tls is not None:
            self._httpd.socket = self.tls.wrap_socket(self._httpd.socket, server_side=True)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Die: drop every open stream and stop listening (connections are refused)."""
        if self._httpd is None:
            return
        self.drop()
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(5)
        self._httpd = None

    @property
    def url(self) -> str:
        scheme = "http" if self.tls is None else "https"
        return f"{scheme}://127.0.0.1:{self.port}"

    # -- data ---------------------------------------------------------------------------

    def publish(self, doc: JSON) -> None:
        """Make ``doc`` current and push the change (or the snapshot) to open streams."""
        with self.cond:
            previous = self.current
            self.current = doc
            self.history[doc["version"]] = doc
            streams = list(self.streams)
        if previous is None:
            data = sse("snapshot", json.dumps(doc, indent=1), doc["version"])
        else:
            body = change_between(previous, doc)
            data = sse("change", json.dumps(body), doc["version"])
        for stream in streams:
            stream.outbox.put(data)

    def first_events(self, last_event_id: str | None) -> bytes:
        with self.cond:
            current = self.current
            history = dict(self.history)
        if current is None:
            return b""
        version = current["version"]
        held = int(last_event_id) if last_event_id and last_event_id.isdigit() else None
        if held == version:
            return b""
        if held is not None and held < version and held in history:
            return sse("change", json.dumps(change_between(history[held], current)), version)
        return sse("snapshot", json.dumps(current, indent=1), version)

    # -- scripting open streams ---------------------------------------------------------

    def send(self, data: bytes | str) -> None:
        """Write raw bytes to every open stream."""
        raw = data.encode() if isinstance(data, str) else data
        for stream in self._open():
            stream.outbox.put(raw)

    def drop(self) -> None:
        """Cut every open stream abruptly, mid-body."""
        for stream in self._open():
            stream.outbox.put(_DROP)

    def end(self) -> None:
        """End every open stream cleanly."""
        for stream in self._open():
            stream.outbox.put(_CLOSE)

    def _open(self) -> list[_Stream]:
        with self.cond:
            return list(self.streams)

    # -- observing ----------------------------------------------------------------------

    def seen(self, path: str) -> list[Seen]:
        with self.cond:
            return [r for r in self.requests if r.path == path]

    def wait(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        with self.cond:
            if not self.cond.wait_for(predicate, timeout):
                raise AssertionError(f"server condition not met within {timeout} s")

    def wait_requests(self, path: str, count: int, timeout: float = 10.0) -> list[Seen]:
        self.wait(lambda: len([r for r in self.requests if r.path == path]) >= count, timeout)
        return self.seen(path)

    def wait_streams(self, count: int = 1, timeout: float = 10.0) -> None:
        """Wait until ``count`` streams were opened since the start, and one is open."""
        self.wait(lambda: self.opened >= count and bool(self.streams), timeout)


def _handler_for(server: DeliveryServer) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        delivery = server

    return Handler


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    delivery: DeliveryServer

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        if self._pre_checks():
            return
        if self.path == "/sdk/v1/stream":
            self._stream()
        elif self.path == "/sdk/v1/snapshot":
            self._snapshot()
        else:
            self._reply(404)

    def do_POST(self) -> None:
        if self._pre_checks():
            return
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length))
        if self.path != "/sdk/v1/events":
            self._reply(404)
            return
        with self.delivery.cond:
            self.delivery.events.append(body)
            self.delivery.cond.notify_all()
        self._reply(202)

    def _pre_checks(self) -> bool:
        """Record the request; answer it here when scripted or unauthorised."""
        server = self.delivery
        seen = Seen(
            self.command,
            self.path,
            {k.lower(): v for k, v in self.headers.items()},
            time.monotonic(),
        )
        with server.cond:
            server.requests.append(seen)
            server.cond.notify_all()
            scripted = server.status.get(self.path)
        if scripted is not None:
            if self.command == "POST":
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self._reply(scripted[0], scripted[1])
            return True
        if self.headers.get("Authorization") != f"Bearer {server.key}":
            self._reply(401)
            return True
        return False

    def _reply(self, status: int, headers: dict[str, str] | None = None, body: bytes = b"") -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _snapshot(self) -> None:
        current = self.delivery.current
        if current is None:
            self._reply(503)
            return
        etag = f'"{current["version"]}"'
        if self.headers.get("If-None-Match") == etag:
            self._reply(304, {"ETag": etag})
            return
        body = json.dumps(current).encode()
        self._reply(200, {"ETag": etag, "Content-Type": "application/json"}, body)

    def _stream(self) -> None:
        server = self.delivery
        self.close_connection = True
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        stream = _Stream()
        with server.cond:  # atomically: what to send first, and receiving later changes
            first = b""
            if server.hydrate:
                first = server.first_events(self.headers.get("Last-Event-ID"))
            server.streams.append(stream)
            server.opened += 1
            server.cond.notify_all()
        try:
            self._chunk(b"retry: 1000\n\n")
            if first:
                self._chunk(first)
            self._pump(stream)
        except OSError:
            pass  # the client went away
        finally:
            with server.cond:
                if stream in server.streams:
                    server.streams.remove(stream)
                server.cond.notify_all()

    def _pump(self, stream: _Stream) -> None:
        server = self.delivery
        last = time.monotonic()
        while True:
            try:
                item = stream.outbox.get(timeout=0.02)
            except queue.Empty:
                ping = server.ping_interval
                if ping is not None and time.monotonic() - last >= ping:
                    self._chunk(b": ping\n\n")
                    last = time.monotonic()
                continue
            if item is _DROP:
                return
            if item is _CLOSE:
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
                return
            assert isinstance(item, bytes)
            self._chunk(item)
            last = time.monotonic()

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


def eventually(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Re-check ``predicate`` every few milliseconds, for what has no notification to wait
    on (files on disk, a background thread's counters)."""
    pause = threading.Event()
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        pause.wait(0.005)


@contextmanager
def running(server: DeliveryServer | None = None) -> Iterator[DeliveryServer]:
    server = (server or DeliveryServer()).start()
    try:
        yield server
    finally:
        server.stop()
