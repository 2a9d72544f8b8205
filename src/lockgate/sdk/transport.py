"""HTTP for the SDK, on the standard library only (``http.client``, ``socket``, ``ssl``).

One new connection per request. Plain requests go through ``http.client``. Through an
HTTP proxy (:mod:`lockgate.sdk.proxy`), ``http://`` requests are sent to the proxy in
absolute form and ``https://`` ones through a ``CONNECT`` tunnel, TLS end to end. The stream is
opened here (request sent, status and headers read, on the calling thread) and its body
is then read without blocking by the process's
:class:`~lockgate.sdk.reactor.StreamReactor`, so this module also undoes the body's
framing (chunked, sized or until the connection ends). The streaming connection can be
aborted from another thread (:meth:`HttpTransport.abort` shuts its socket down), which is
how ``close()`` ends a stream waiting for the next event.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import os
import socket
import ssl
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from email.message import Message
from http.client import HTTPMessage
from typing import Any, NoReturn, Protocol
from urllib.parse import urlsplit

from lockgate.sdk.proxy import Proxy, choose_proxy
from lockgate.sdk.trust import tls_context

__all__ = [
    "BodyDecoder",
    "ChunkedDecoder",
    "HttpError",
    "HttpTransport",
    "IdentityDecoder",
    "KeyRejectedError",
    "NotAStreamError",
    "OpenStream",
    "ProxyRefusedError",
    "Response",
    "StreamAbortedError",
    "TransportError",
]

TransportError = (OSError, http.client.HTTPException)
"""What a failed connection raises: refused, reset, timed out, TLS, malformed HTTP."""

_CHUNK = 64 * 1024
_MAX_BODY = 64 * 1024 * 1024
_MAX_HEAD = 64 * 1024


class HttpError(Exception):
    """The server answered with an unexpected status."""

    def __init__(self, status: int, retry_after: str | None = None, body: bytes = b"") -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.retry_after = retry_after
        """The raw ``Retry-After`` header, if any."""
        self.body = body
        """The start of the answer's body (a problem document, typically), if read."""


class KeyRejectedError(HttpError):
    """401 or 403: the SDK key is unknown, revoked or not allowed here."""


class NotAStreamError(http.client.HTTPException):
    """A 200 answer that is not ``text/event-stream`` (a proxy in the way, typically)."""


class ProxyRefusedError(OSError):
    """The proxy answered ``CONNECT`` with something other than 2xx (407: credentials)."""

    def __init__(self, status: int) -> None:
        super().__init__(f"the proxy refused the tunnel: HTTP {status}")
        self.status = status


class StreamAbortedError(Exception):
    """The stream was aborted by :meth:`HttpTransport.abort` (the client is closing)."""


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: Message
    body: bytes


class HttpTransport:
    """Requests to one lockgate server with one SDK key.

    ``proxy``: ``None`` follows the environment (``HTTPS_PROXY``, ``HTTP_PROXY``,
    ``NO_PROXY``), ``""`` goes direct, a URL names the proxy. ``ssl_context`` wins over
    ``ca_bundle``, which wins over the environment's bundle (:mod:`lockgate.sdk.trust`).
    """

    def __init__(  # noqa: PLR0913 - keyword-only settings
        self,
        base_url: str,
        sdk_key: str,
        *,
        connect_timeout: float,
        read_timeout: float,
        user_agent: str,
        ssl_context: ssl.SSLContext | None = None,
        ca_bundle: str | os.PathLike[str] | None = None,
        proxy: str | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base_url must be an http:// or https:// URL, not {base_url!r}")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        bracketed = f"[{self._host}]" if ":" in self._host else self._host
        self._host_header = bracketed if self._port is None else f"{bracketed}:{self._port}"
        self._prefix = parts.path.rstrip("/")
        self._ssl = None
        if self._https:
            self._ssl = ssl_context or tls_context(ca_bundle, os.environ)
        self._origin_port = self._port or (443 if self._https else 80)
        self._proxy = choose_proxy(proxy, parts.scheme, self._host, self._origin_port, os.environ)
        self._authority = f"{bracketed}:{self._origin_port}"
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._headers = {"Authorization": f"Bearer {sdk_key}", "User-Agent": user_agent}
        self._lock = threading.Lock()
        self._active: socket.socket | None = None
        self._aborted = False

    # -- plain requests -----------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        json_body: Any = None,
        expect: tuple[int, ...] = (200,),
        timeout: float | None = None,
    ) -> Response:
        """One request; raises :class:`HttpError` unless the status is in ``expect``."""
        conn = self._connection(self.connect_timeout if timeout is None else timeout)
        response = None
        try:
            self._connect(conn, self.read_timeout if timeout is None else timeout)
            body = None
            all_headers = {**self._headers, **self._proxy_headers, **(headers or {})}
            if json_body is not None:
                body = json.dumps(json_body, separators=(",", ":")).encode()
                all_headers["Content-Type"] = "application/json"
            conn.request(method, self._target(path), body=body, headers=all_headers)
            response = conn.getresponse()
            _check(response, expect)
            data = response.read(_MAX_BODY + 1)
            if len(data) > _MAX_BODY:
                raise http.client.HTTPException(f"response body over {_MAX_BODY} bytes")
            return Response(response.status, response.msg, data)
        finally:
            _close(conn, response)

    # -- streaming ----------------------------------------------------------------------

    @contextlib.contextmanager
    def stream(self, path: str, headers: Mapping[str, str]) -> Iterator[OpenStream]:
        """Open a ``text/event-stream``: status and headers read, the body still to come.

        The body is read by a :class:`~lockgate.sdk.reactor.StreamReactor` from
        :attr:`OpenStream.sock`. Raises :class:`HttpError` for any status but 200,
        :class:`NotAStreamError` for another content type and :class:`StreamAbortedError`
        once :meth:`abort` has been called. The socket is closed on leaving the block.
        """
        sock = self._open_socket()
        try:
            with self._lock:  # from here on abort() can shut the socket down
                if self._aborted:
                    raise StreamAbortedError
                self._active = sock
            request = [f"GET {self._target(path)} HTTP/1.1", f"Host: {self._host_header}"]
            for name, value in {**self._headers, **self._proxy_headers, **headers}.items():
                request.append(f"{name}: {value}")
            sock.sendall(("\r\n".join(request) + "\r\n\r\n").encode("latin-1"))
            status, message, rest = _read_head(sock)
            if status != 200:
                _raise_status(status, message.get("Retry-After"))
            content_type = message.get("Content-Type", "")
            if not content_type.startswith("text/event-stream"):
                raise NotAStreamError(f"expected text/event-stream, got {content_type!r}")
            yield OpenStream(sock, message, _body_decoder(message), rest, self.read_timeout)
        finally:
            with self._lock:
                self._active = None
            with contextlib.suppress(OSError):
                sock.close()

    def abort(self) -> None:
        """Unblock and end the current stream; every later :meth:`stream` call fails."""
        with self._lock:
            self._aborted = True
            sock = self._active
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    # -- helpers ------------------------------------------------------------------------

    @property
    def proxy(self) -> Proxy | None:
        """The proxy requests go through, if any."""
        return self._proxy

    @property
    def _proxy_headers(self) -> dict[str, str]:
        """Headers for a proxy that reads the request itself (``http://`` through a proxy)."""
        if self._proxy is None or self._https:
            return {}
        return self._proxy.headers()

    def _target(self, path: str) -> str:
        """The request target: absolute form when a proxy forwards the request itself."""
        if self._proxy is None or self._https:
            return self._prefix + path
        return f"http://{self._authority}{self._prefix}{path}"

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        proxy = self._proxy
        if self._ssl is not None:
            if proxy is None:
                return http.client.HTTPSConnection(
                    self._host, self._port, timeout=timeout, context=self._ssl
                )
            conn = http.client.HTTPSConnection(
                proxy.host, proxy.port, timeout=timeout, context=self._ssl
            )
            conn.set_tunnel(self._host, self._origin_port, headers=proxy.headers())
            return conn
        if proxy is None:
            return http.client.HTTPConnection(self._host, self._port, timeout=timeout)
        return http.client.HTTPConnection(proxy.host, proxy.port, timeout=timeout)

    def _open_socket(self) -> socket.socket:
        """A connected socket (tunnelled and TLS handshake done for https), with the read
        timeout set."""
        proxy = self._proxy
        address = (self._host, self._origin_port) if proxy is None else (proxy.host, proxy.port)
        sock = socket.create_connection(address, self.connect_timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._ssl is not None:
                if proxy is not None:
                    _open_tunnel(sock, self._authority, proxy)
                sock = self._ssl.wrap_socket(sock, server_hostname=self._host)
            sock.settimeout(self.read_timeout)
        except BaseException:
            sock.close()
            raise
        return sock

    @staticmethod
    def _connect(conn: http.client.HTTPConnection, read_timeout: float) -> None:
        conn.connect()  # bounded by the connection's (connect) timeout
        if conn.sock is not None:
            conn.sock.settimeout(read_timeout)


def _open_tunnel(sock: socket.socket, authority: str, proxy: Proxy) -> None:
    """Ask the proxy for a tunnel to ``authority`` (``CONNECT``, RFC 9110 section 9.3.6)."""
    lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}"]
    lines += [f"{name}: {value}" for name, value in proxy.headers().items()]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    status, _, rest = _read_head(sock)
    if not 200 <= status < 300:
        raise ProxyRefusedError(status)
    if rest:  # the server speaks only after the TLS client hello
        raise http.client.HTTPException("the proxy sent data into the tunnel before TLS")


_ERROR_BODY = 16 * 1024


def _check(response: http.client.HTTPResponse, expect: tuple[int, ...]) -> None:
    if response.status not in expect:
        try:
            body = response.read(_ERROR_BODY)
        except TransportError:
            body = b""
        _raise_status(response.status, response.getheader("Retry-After"), body)


def _raise_status(status: int, retry_after: str | None, body: bytes = b"") -> NoReturn:
    if status in (401, 403):
        raise KeyRejectedError(status, body=body)
    raise HttpError(status, retry_after, body)


def _close(conn: http.client.HTTPConnection, response: http.client.HTTPResponse | None) -> None:
    # A response that will close the connection owns its socket: close both.
    if response is not None:
        response.close()
    conn.close()


def _read_head(sock: socket.socket) -> tuple[int, HTTPMessage, bytes]:
    """Status, headers and the body bytes received with them (1xx answers skipped)."""
    buffer = b""
    while True:
        end = buffer.find(b"\r\n\r\n")
        if end < 0 and len(buffer) <= _MAX_HEAD:
            data = sock.recv(_CHUNK)
            if not data:
                raise http.client.RemoteDisconnected("the server closed the connection")
            buffer += data
            continue
        if end < 0 or end > _MAX_HEAD:
            raise http.client.HTTPException(f"response head over {_MAX_HEAD} bytes")
        head, buffer = buffer[:end], buffer[end + 4 :]
        status_line, _, fields = head.partition(b"\r\n")
        status = _status(status_line)
        if 100 <= status < 200:
            continue  # an informational answer; the real one follows
        message = http.client.parse_headers(io.BytesIO(fields + b"\r\n\r\n"))
        return status, message, buffer


def _status(line: bytes) -> int:
    version, _, rest = line.partition(b" ")
    code = rest[:3]
    if not version.startswith(b"HTTP/1.") or len(code) != 3 or not code.isdigit():
        raise http.client.BadStatusLine(line[:80].decode("latin-1"))
    return int(code)


def _body_decoder(message: HTTPMessage) -> BodyDecoder:
    encoding = message.get("Transfer-Encoding", "").lower()
    if encoding:
        if encoding.rsplit(",", 1)[-1].strip() != "chunked":
            raise http.client.HTTPException(f"unsupported Transfer-Encoding {encoding!r}")
        return ChunkedDecoder()
    length = message.get("Content-Length")
    if length is None:
        return IdentityDecoder(None)  # the body ends when the connection does
    if not length.strip().isdigit():
        raise http.client.HTTPException(f"malformed Content-Length {length!r}")
    return IdentityDecoder(int(length))


@dataclass(slots=True)
class OpenStream:
    """A stream whose status and headers were read; its body is still to be read."""

    sock: socket.socket
    headers: HTTPMessage
    decoder: BodyDecoder
    received: bytes
    """Body bytes that arrived with the headers (still framed: feed them to ``decoder``)."""
    read_timeout: float
    """Silence longer than this means the stream is dead (the heartbeat watchdog)."""


class BodyDecoder(Protocol):
    """Undoes the body's framing, over arbitrary slices of the bytes received."""

    done: bool
    """The body is complete: whatever follows is not part of it."""

    def feed(self, raw: bytes) -> bytes:
        """The payload carried by ``raw`` (may be empty)."""

    def eof(self) -> None:
        """The connection ended: raises :class:`http.client.IncompleteRead` if early."""


class IdentityDecoder:
    """A body of ``length`` bytes, or (``None``) one that ends with the connection."""

    def __init__(self, length: int | None) -> None:
        self._left = length
        self.done = length == 0

    def feed(self, raw: bytes) -> bytes:
        if self._left is None:
            return raw
        raw = raw[: self._left]
        self._left -= len(raw)
        self.done = self._left == 0
        return raw

    def eof(self) -> None:
        if self._left:
            raise http.client.IncompleteRead(b"", self._left)


_SIZE_LINE, _CHUNK_END = -1, -2
_MAX_SIZE_LINE = 1024


class ChunkedDecoder:
    """``Transfer-Encoding: chunked`` (RFC 9112 section 7.1), trailers ignored."""

    def __init__(self) -> None:
        self._pending = b""
        self._left = _SIZE_LINE  # chunk bytes still to come, or which framing comes next
        self._trailers = False
        self.done = False

    def feed(self, raw: bytes) -> bytes:
        data = self._pending + raw if self._pending else raw
        self._pending = b""
        out: list[bytes] = []
        at, size = 0, len(data)
        while at < size and not self.done:
            left = self._left
            if left > 0:  # chunk data
                take = data[at : at + left]
                out.append(take)
                at += len(take)
                self._left = left - len(take) or _CHUNK_END
                continue
            end = data.find(b"\r\n", at)
            if end < 0:
                self._keep(data[at:])
                break
            line = data[at:end]
            at = end + 2
            if self._trailers:
                self.done = not line  # trailer fields end with an empty line
            elif left == _CHUNK_END:
                if line:
                    raise http.client.HTTPException("malformed chunk terminator")
                self._left = _SIZE_LINE
            else:
                self._left = _chunk_size(line)
                self._trailers = self._left == 0  # the last chunk: trailers follow
        return b"".join(out)

    def _keep(self, rest: bytes) -> None:
        if len(rest) > _MAX_SIZE_LINE:
            raise http.client.HTTPException("malformed chunk framing")
        self._pending = rest

    def eof(self) -> None:
        if not self.done:
            raise http.client.IncompleteRead(b"")


def _chunk_size(line: bytes) -> int:
    text = line.split(b";", 1)[0].strip()
    if not text or len(text) > 16 or not all(c in _HEX for c in text):
        raise http.client.HTTPException(f"malformed chunk size {line[:20]!r}")
    return int(text, 16)


_HEX = frozenset(b"0123456789abcdefABCDEF")
