"""HTTP for the SDK, on the standard library only (``http.client`` and ``ssl``).

One new connection per request. The streaming connection can be aborted from another
thread (:meth:`HttpTransport.abort` shuts its socket down), which is how ``close()``
unblocks a reader waiting for the next event.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import ssl
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from email.message import Message
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "HttpError",
    "HttpTransport",
    "KeyRejectedError",
    "NotAStreamError",
    "Response",
    "StreamAbortedError",
    "TransportError",
]

TransportError = (OSError, http.client.HTTPException)
"""What a failed connection raises: refused, reset, timed out, TLS, malformed HTTP."""

_CHUNK = 64 * 1024
_MAX_BODY = 64 * 1024 * 1024


class HttpError(Exception):
    """The server answered with an unexpected status."""

    def __init__(self, status: int, retry_after: str | None = None) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.retry_after = retry_after
        """The raw ``Retry-After`` header, if any."""


class KeyRejectedError(HttpError):
    """401 or 403: the SDK key is unknown, revoked or not allowed here."""


class NotAStreamError(http.client.HTTPException):
    """A 200 answer that is not ``text/event-stream`` (a proxy in the way, typically)."""


class StreamAbortedError(Exception):
    """The stream was aborted by :meth:`HttpTransport.abort` (the client is closing)."""


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: Message
    body: bytes


class HttpTransport:
    """Requests to one lockgate server with one SDK key."""

    def __init__(
        self,
        base_url: str,
        sdk_key: str,
        *,
        connect_timeout: float,
        read_timeout: float,
        user_agent: str,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base_url must be an http:// or https:// URL, not {base_url!r}")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._prefix = parts.path.rstrip("/")
        self._ssl = ssl_context or (ssl.create_default_context() if self._https else None)
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
            all_headers = {**self._headers, **(headers or {})}
            if json_body is not None:
                body = json.dumps(json_body, separators=(",", ":")).encode()
                all_headers["Content-Type"] = "application/json"
            conn.request(method, self._prefix + path, body=body, headers=all_headers)
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
    def stream(self, path: str, headers: Mapping[str, str]) -> Iterator[Iterator[bytes]]:
        """Open a ``text/event-stream``; yields an iterator over the raw bytes received.

        Raises :class:`HttpError` for any status but 200, :class:`StreamAbortedError` once
        :meth:`abort` has been called. A silence longer than ``read_timeout`` raises
        :class:`TimeoutError` from the iterator (the heartbeat watchdog).
        """
        conn = self._connection(self.connect_timeout)
        response = None
        try:
            self._connect(conn, self.read_timeout)
            with self._lock:  # from here on abort() can shut the socket down
                if self._aborted:
                    raise StreamAbortedError
                self._active = conn.sock
            conn.request("GET", self._prefix + path, headers={**self._headers, **headers})
            response = conn.getresponse()
            _check(response, (200,))
            content_type = response.getheader("Content-Type", "")
            if not content_type.startswith("text/event-stream"):
                raise NotAStreamError(f"expected text/event-stream, got {content_type!r}")
            yield _chunks(response)
        finally:
            with self._lock:
                self._active = None
            _close(conn, response)

    def abort(self) -> None:
        """Unblock and end the current stream; every later :meth:`stream` call fails."""
        with self._lock:
            self._aborted = True
            sock = self._active
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    # -- helpers ------------------------------------------------------------------------

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        if self._ssl is not None:
            return http.client.HTTPSConnection(
                self._host, self._port, timeout=timeout, context=self._ssl
            )
        return http.client.HTTPConnection(self._host, self._port, timeout=timeout)

    @staticmethod
    def _connect(conn: http.client.HTTPConnection, read_timeout: float) -> None:
        conn.connect()  # bounded by the connection's (connect) timeout
        if conn.sock is not None:
            conn.sock.settimeout(read_timeout)


def _check(response: http.client.HTTPResponse, expect: tuple[int, ...]) -> None:
    if response.status in expect:
        return
    retry_after = response.getheader("Retry-After")
    if response.status in (401, 403):
        raise KeyRejectedError(response.status)
    raise HttpError(response.status, retry_after)


def _close(conn: http.client.HTTPConnection, response: http.client.HTTPResponse | None) -> None:
    # A response that will close the connection owns its socket: close both.
    if response is not None:
        response.close()
    conn.close()


def _chunks(response: http.client.HTTPResponse) -> Iterator[bytes]:
    while True:
        chunk = response.read1(_CHUNK)
        if not chunk:
            return
        yield chunk
