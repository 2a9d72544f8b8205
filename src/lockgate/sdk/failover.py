"""Several lockgate servers (replicas of one database) behind one SDK client.

:class:`FailoverTransport` has the interface of
:class:`~lockgate.sdk.transport.HttpTransport` and holds one of them per server URL. It
sticks to the server that last answered; when that one cannot be reached, refuses the
connection, or answers ``502``/``503``/``504`` (a replica that is stopping, or cannot reach
its database), the same call is tried on the next server at once, in the order given, so a
replica restarted or taken out of service costs the application nothing.

A request is only sent again when that cannot do a thing twice: ``GET`` requests (and
requests the caller marks ``idempotent``) are retried after any failure; others only when
the connection was refused or the server answered ``503`` (nothing was processed).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from lockgate.sdk.proxy import Proxy
from lockgate.sdk.transport import (
    HttpError,
    HttpTransport,
    KeyRejectedError,
    OpenStream,
    Response,
    StreamAbortedError,
    TransportError,
)

__all__ = ["RETRY_STATUSES", "FailoverTransport", "base_urls"]

RETRY_STATUSES = frozenset({502, 503, 504})
"""Statuses after which the next server is tried (an answer from a proxy or a replica that
cannot serve now, rather than from lockgate's logic)."""


def base_urls(base_url: str | Sequence[str]) -> list[str]:
    """The server URLs of ``base_url``: one URL, or a sequence of them (at least one)."""
    urls = [base_url] if isinstance(base_url, str) else list(base_url)
    if not urls or not all(isinstance(url, str) and url for url in urls):
        raise ValueError("base_url must be a URL or a non-empty list of URLs")
    return urls


class FailoverTransport:
    """Requests and streams to the first of several servers that answers."""

    def __init__(self, transports: Sequence[HttpTransport]) -> None:
        if not transports:
            raise ValueError("at least one server is needed")
        self._transports = list(transports)
        self._current = 0
        self._lock = threading.Lock()
        self.failovers = 0
        """How many times a call moved on to the next server (for tests and metrics)."""

    @property
    def proxy(self) -> Proxy | None:
        return self._transports[self._current].proxy

    @property
    def current(self) -> int:
        """The index of the server used first by the next call."""
        return self._current

    def _order(self) -> list[int]:
        start = self._current
        count = len(self._transports)
        return [(start + i) % count for i in range(count)]

    def _moved(self, index: int, failed: bool) -> None:
        with self._lock:
            if failed:
                self.failovers += 1
            self._current = index

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        json_body: Any = None,
        expect: tuple[int, ...] = (200,),
        timeout: float | None = None,
        idempotent: bool | None = None,
    ) -> Response:
        """``HttpTransport.request`` on the first server that answers it.

        ``idempotent`` (default: ``GET`` only) allows sending the request again to the next
        server after any failure, even one that may have happened after it was processed.
        """
        repeatable = method == "GET" if idempotent is None else idempotent
        last: Exception | None = None
        order = self._order()
        for index in order:
            transport = self._transports[index]
            try:
                response = transport.request(
                    method,
                    path,
                    headers=headers,
                    json_body=json_body,
                    expect=expect,
                    timeout=timeout,
                )
            except KeyRejectedError:
                raise
            except HttpError as exc:
                if exc.status not in RETRY_STATUSES or (not repeatable and exc.status != 503):
                    raise
                last = exc
            except TransportError as exc:
                if not repeatable and not isinstance(exc, ConnectionRefusedError):
                    raise
                last = exc
            else:
                if index != order[0]:
                    self._moved(index, failed=True)
                return response
        assert last is not None
        raise last

    @contextlib.contextmanager
    def stream(self, path: str, headers: Mapping[str, str]) -> Iterator[OpenStream]:
        """The stream of the first server that opens one (see ``HttpTransport.stream``)."""
        last: Exception | None = None
        order = self._order()
        for index in order:
            opening = self._transports[index].stream(path, headers)
            try:
                opened = opening.__enter__()
            except StreamAbortedError:
                raise
            except KeyRejectedError:
                raise
            except HttpError as exc:
                if exc.status not in RETRY_STATUSES:
                    raise
                last = exc
                continue
            except TransportError as exc:
                last = exc
                continue
            if index != order[0]:
                self._moved(index, failed=True)
            with _closing(opening):
                yield opened
            return
        assert last is not None
        raise last

    def abort(self) -> None:
        for transport in self._transports:
            transport.abort()


@contextlib.contextmanager
def _closing(opening: contextlib.AbstractContextManager[OpenStream]) -> Iterator[None]:
    """Leave ``opening`` (entered by hand) with whatever ends the block."""
    try:
        yield
    except BaseException as exc:
        if not opening.__exit__(type(exc), exc, exc.__traceback__):
            raise
    else:
        opening.__exit__(None, None, None)
