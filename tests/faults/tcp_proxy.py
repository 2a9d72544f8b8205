"""A TCP proxy that a test can cut and restore, to take a shared server away from one client.

Put between lockgate and PostgreSQL, it simulates the database going away without stopping
the PostgreSQL server other tests use:

- ``cut("refuse")``: every proxied connection is reset, and new ones are accepted and
  reset at once (a database that is down or restarting);
- ``cut("hang")``: every proxied connection is reset, and new ones are accepted but never
  answered (a database host that vanished from the network: only timeouts help);
- ``restore()``: new connections are proxied again.

Threads only (one accepting, two per proxied connection); every socket has a timeout and
:meth:`close` stops everything it started.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["TcpProxy", "tcp_proxy"]


def _reset(sock: socket.socket) -> None:
    """Close at once, with a reset (RST) as a crashed peer would; a thread blocked reading
    the socket is woken by the shutdown."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


class TcpProxy:
    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(128)
        self._listener.settimeout(0.2)
        self.port: int = self._listener.getsockname()[1]
        self.mode = "open"
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self.accepted = 0
        """Connections accepted in any mode (a client retrying shows here)."""
        self._accepting = threading.Thread(target=self._accept, name="tcp-proxy", daemon=True)
        self._accepting.start()

    def url_for(self, database_url: str) -> str:
        """``database_url`` (of the upstream host and port) pointed at this proxy."""
        host, port = self.upstream
        return database_url.replace(f"@{host}:{port}/", f"@127.0.0.1:{self.port}/", 1)

    def cut(self, mode: str = "refuse") -> None:
        assert mode in ("refuse", "hang")
        with self._lock:
            self.mode = mode
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            _reset(sock)

    def restore(self) -> None:
        with self._lock:
            self.mode = "open"
            held, self._sockets = self._sockets, set()
        for sock in held:  # connections that hung while cut
            _reset(sock)

    def close(self) -> None:
        self._stop.set()
        self.cut("refuse")
        self._accepting.join(5)
        with contextlib.suppress(OSError):
            self._listener.close()
        for thread in self._threads:
            thread.join(5)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            with self._lock:
                mode = self.mode
                if mode == "hang":
                    self._sockets.add(client)
            if mode == "refuse":
                _reset(client)
            elif mode == "open":
                self._connect(client)

    def _connect(self, client: socket.socket) -> None:
        try:
            server = socket.create_connection(self.upstream, timeout=5)
        except OSError:
            _reset(client)
            return
        for sock in (client, server):
            sock.settimeout(None)
        with self._lock:
            if self.mode != "open":
                _reset(client)
                _reset(server)
                return
            self._sockets |= {client, server}
        self._threads = [t for t in self._threads if t.is_alive()]
        pair = _Pair(self, client, server)
        for source, target in ((client, server), (server, client)):
            thread = threading.Thread(target=pair.pump, args=(source, target), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _forget(self, *sockets: socket.socket) -> None:
        with self._lock:
            self._sockets -= set(sockets)


class _Pair:
    """A proxied connection: both sockets are closed when both directions have ended."""

    def __init__(self, proxy: TcpProxy, client: socket.socket, server: socket.socket) -> None:
        self.proxy = proxy
        self.sockets = (client, server)
        self.running = 2
        self.lock = threading.Lock()

    def pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                target.sendall(data)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_WR)
        with self.lock:
            self.running -= 1
            last = self.running == 0
        if last:
            self.proxy._forget(*self.sockets)
            for sock in self.sockets:
                with contextlib.suppress(OSError):
                    sock.close()


@contextmanager
def tcp_proxy(upstream: tuple[str, int]) -> Iterator[TcpProxy]:
    proxy = TcpProxy(upstream)
    try:
        yield proxy
    finally:
        proxy.close()
