"""A small, real HTTP forward proxy on 127.0.0.1 for tests (standard library only).

It forwards absolute-form requests (``GET http://host:port/path``) and tunnels ``CONNECT``
(TLS passes through untouched), one upstream connection per client connection, and records
what it was asked. It can demand credentials (407 without the expected
``Proxy-Authorization``) and refuse tunnels.

Bounded and self-stopping: every socket has a timeout, a connection relays for at most
``lifetime`` seconds, the listener stops accepting after ``lifetime`` too, and leaving
:func:`proxying` closes every socket and joins every thread.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

_HEAD_LIMIT = 64 * 1024
_IO_TIMEOUT = 5.0


@dataclass(frozen=True)
class Asked:
    """One request the proxy received: method, target and its ``Proxy-Authorization``."""

    method: str
    target: str
    authorization: str | None


class ForwardProxy:
    def __init__(
        self,
        *,
        require_authorization: str | None = None,
        refuse_connect: int | None = None,
        lifetime: float = 60.0,
    ) -> None:
        self.require_authorization = require_authorization
        self.refuse_connect = refuse_connect
        self.asked: list[Asked] = []
        self.errors: list[BaseException] = []
        self._deadline = time.monotonic() + lifetime
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._stopped = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.port: int = self._listener.getsockname()[1]
        self._accepting = threading.Thread(target=self._accept, name="test-proxy", daemon=True)
        self._accepting.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def methods(self) -> list[str]:
        with self._lock:
            return [f"{asked.method} {asked.target}" for asked in self.asked]

    # -- lifecycle ----------------------------------------------------------------------

    def _accept(self) -> None:
        while not self._stopped.is_set() and time.monotonic() < self._deadline:
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                break
            conn.settimeout(_IO_TIMEOUT)
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            with self._lock:
                self._sockets.add(conn)
                self._threads.append(thread)
            thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._accepting.join(_IO_TIMEOUT)
        self._listener.close()
        with self._lock:
            sockets, threads = list(self._sockets), list(self._threads)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in threads:
            thread.join(_IO_TIMEOUT)
        assert not any(thread.is_alive() for thread in threads), "a proxy thread is stuck"

    # -- one connection -----------------------------------------------------------------

    def _serve(self, conn: socket.socket) -> None:
        upstream: socket.socket | None = None
        try:
            head, rest = _read_head(conn)
            method, target, authorization = _request_line_and_auth(head)
            with self._lock:
                self.asked.append(Asked(method, target, authorization))
            refusal = self._refusal(method, authorization)
            if refusal is not None:
                conn.sendall(refusal)
                return
            upstream = self._upstream(conn, method, target, head, rest)
            self._relay(conn, upstream)
        except Exception as exc:
            self.errors.append(exc)
        finally:
            for sock in (conn, upstream):
                if sock is not None:
                    self._forget(sock)

    def _refusal(self, method: str, authorization: str | None) -> bytes | None:
        required = self.require_authorization
        if required is not None and authorization != required:
            return b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n"
        if method == "CONNECT" and self.refuse_connect is not None:
            status = self.refuse_connect
            return f"HTTP/1.1 {status} Refused\r\nContent-Length: 0\r\n\r\n".encode()
        return None

    def _upstream(
        self, conn: socket.socket, method: str, target: str, head: bytes, rest: bytes
    ) -> socket.socket:
        if method == "CONNECT":
            host, _, port = target.rpartition(":")
            upstream = self._connect(host.strip("[]"), int(port))
            conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            if rest:
                upstream.sendall(rest)
            return upstream
        parts = urlsplit(target)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"not an absolute-form target: {target!r}")
        upstream = self._connect(parts.hostname, parts.port or 80)
        origin = parts.path + (f"?{parts.query}" if parts.query else "")
        _, _, after = head.partition(b"\r\n")
        lines = [line for line in after.split(b"\r\n") if not _is_proxy_header(line)]
        request_line = f"{method} {origin or '/'} HTTP/1.1".encode()
        upstream.sendall(b"\r\n".join([request_line, *lines]) + b"\r\n\r\n" + rest)
        return upstream

    def _connect(self, host: str, port: int) -> socket.socket:
        upstream = socket.create_connection((host, port), _IO_TIMEOUT)
        with self._lock:
            self._sockets.add(upstream)
        return upstream

    def _relay(self, conn: socket.socket, upstream: socket.socket) -> None:
        """Copy bytes both ways until either side closes, the proxy stops or its time ends."""
        peers = {conn: upstream, upstream: conn}
        with selectors.DefaultSelector() as selector:
            for sock in peers:
                selector.register(sock, selectors.EVENT_READ)
            while not self._stopped.is_set() and time.monotonic() < self._deadline:
                for key, _ in selector.select(timeout=0.1):
                    source: socket.socket = key.fileobj  # type: ignore[assignment]
                    try:
                        data = source.recv(65536)
                    except OSError:
                        return
                    if not data:
                        return
                    peers[source].sendall(data)

    def _forget(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)
        with contextlib.suppress(OSError):
            sock.close()


def _read_head(conn: socket.socket) -> tuple[bytes, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        if len(data) > _HEAD_LIMIT:
            raise ValueError("request head too long")
        more = conn.recv(65536)
        if not more:
            raise ConnectionError("the client closed before its request head")
        data += more
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def _request_line_and_auth(head: bytes) -> tuple[str, str, str | None]:
    first, _, fields = head.decode("latin-1").partition("\r\n")
    method, target, _ = first.split(" ", 2)
    authorization = None
    for line in fields.split("\r\n"):
        name, _, value = line.partition(":")
        if name.strip().lower() == "proxy-authorization":
            authorization = value.strip()
    return method, target, authorization


def _is_proxy_header(line: bytes) -> bool:
    return line.lower().startswith((b"proxy-authorization:", b"proxy-connection:"))


@contextlib.contextmanager
def proxying(
    *,
    require_authorization: str | None = None,
    refuse_connect: int | None = None,
    lifetime: float = 60.0,
) -> Iterator[ForwardProxy]:
    proxy = ForwardProxy(
        require_authorization=require_authorization,
        refuse_connect=refuse_connect,
        lifetime=lifetime,
    )
    try:
        yield proxy
    finally:
        proxy.stop()
