"""A minimal blocking SSE client for tests: one socket, h11 for HTTP, every read bounded.

``SseClient.open(url, key)`` sends ``GET /sdk/v1/stream`` and reads the response head;
``next(timeout)`` returns the next item (an event, a comment such as ``: ping``, or a
``retry:`` hint) and raises :class:`TimeoutError` when none arrives in time, or
:class:`StreamClosedError` when the server ended the stream.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import h11

__all__ = ["SseClient", "SseItem", "StreamClosedError"]


class StreamClosedError(Exception):
    """The server ended the response (or closed the connection)."""


@dataclass(frozen=True)
class SseItem:
    kind: str  # event | comment | retry
    name: str = ""
    id: str | None = None
    data: str = ""
    retry: int | None = None
    comment: str = ""

    def json(self) -> Any:
        return json.loads(self.data)

    @property
    def version(self) -> int:
        assert self.id is not None, self
        return int(self.id)


def _parse_block(block: str) -> SseItem | None:
    name, event_id, data, retry, comments = "", None, [], None, []
    for line in block.split("\n"):
        if line.startswith(":"):
            comments.append(line[1:].strip())
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            name = value
        elif field == "id":
            event_id = value
        elif field == "data":
            data.append(value)
        elif field == "retry":
            retry = int(value)
    if data or name:
        return SseItem("event", name or "message", event_id, "\n".join(data))
    if retry is not None:
        return SseItem("retry", retry=retry)
    if comments:
        return SseItem("comment", comment="\n".join(comments))
    return None


class SseClient:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.conn = h11.Connection(h11.CLIENT)
        self.status = 0
        self.headers: dict[str, str] = {}
        self.body = b""
        self._text = ""
        self._items: deque[SseItem] = deque()
        self._ended = False

    @classmethod
    def open(
        cls,
        base_url: str,
        key: str,
        *,
        last_event_id: str | int | None = None,
        path: str = "/sdk/v1/stream",
        headers: Sequence[tuple[str, str]] = (),
        timeout: float = 10.0,
    ) -> SseClient:
        """Connect and read the response head; a non-200 response's body is read too."""
        parts = urlsplit(base_url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        client = cls(socket.create_connection((host, port), timeout=timeout))
        sent = [("Host", f"{host}:{port}"), ("Accept", "text/event-stream"), *headers]
        if key:
            sent.append(("Authorization", f"Bearer {key}"))
        if last_event_id is not None:
            sent.append(("Last-Event-ID", str(last_event_id)))
        try:
            client._send(h11.Request(method="GET", target=path, headers=sent))
            client._send(h11.EndOfMessage())
            deadline = time.monotonic() + timeout
            while client.status == 0:
                client._pump(deadline)
            if client.status != 200:
                while not client._ended:
                    client._pump(deadline)
        except BaseException:
            client.close()
            raise
        return client

    def _send(self, event: Any) -> None:
        data = self.conn.send(event)
        if data:
            self.sock.sendall(data)

    def _pump(self, deadline: float) -> None:
        """Process one h11 event, reading from the socket (until ``deadline``) if needed."""
        while True:
            event = self.conn.next_event()
            if event is h11.NEED_DATA:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("nothing from the server in time")
                self.sock.settimeout(remaining)
                try:
                    chunk = self.sock.recv(65536)
                except TimeoutError:
                    raise TimeoutError("nothing from the server in time") from None
                except OSError:
                    chunk = b""
                self.conn.receive_data(chunk)
                continue
            break
        if isinstance(event, h11.Response):
            self.status = event.status_code
            self.headers = {k.decode().lower(): v.decode() for k, v in event.headers}
        elif isinstance(event, h11.Data):
            if self.status == 200:
                self._text += bytes(event.data).decode()
                self._split()
            else:
                self.body += bytes(event.data)
        elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
            self._ended = True

    def _split(self) -> None:
        while "\n\n" in self._text:
            block, self._text = self._text.split("\n\n", 1)
            item = _parse_block(block)
            if item is not None:
                self._items.append(item)

    def next(self, timeout: float = 5.0) -> SseItem:
        """The next item; :class:`TimeoutError` if none in ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not self._items:
            if self._ended:
                raise StreamClosedError
            self._pump(deadline)
        return self._items.popleft()

    def next_event(self, timeout: float = 5.0) -> SseItem:
        """The next event, skipping comments and retry hints."""
        deadline = time.monotonic() + timeout
        while True:
            item = self.next(max(deadline - time.monotonic(), 0.0))
            if item.kind == "event":
                return item

    def items_for(self, seconds: float) -> list[SseItem]:
        """Everything that arrives in the next ``seconds`` (the stream must stay open)."""
        deadline = time.monotonic() + seconds
        items: list[SseItem] = []
        while True:
            try:
                items.append(self.next(max(deadline - time.monotonic(), 0.0)))
            except TimeoutError:
                return items

    def wait_closed(self, timeout: float) -> list[SseItem]:
        """Read until the server ends the stream; what arrived before. TimeoutError if not."""
        deadline = time.monotonic() + timeout
        items: list[SseItem] = []
        while True:
            try:
                items.append(self.next(max(deadline - time.monotonic(), 0.0)))
            except StreamClosedError:
                return items

    def json(self) -> Any:
        return json.loads(self.body)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()

    def __enter__(self) -> SseClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
