"""A request body that stops short of its Content-Length is answered 408, not waited for."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from lockgate.api.limits import RequestLimits
from tests.cli.lockgate_server import running_server


def test_a_short_body_is_408_in_process() -> None:
    reached: list[bool] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        reached.append(True)

    sent: list[MutableMapping[str, Any]] = []
    chunks = [{"type": "http.request", "body": b'{"a"', "more_body": True}]

    async def receive() -> dict[str, Any]:
        if chunks:
            return chunks.pop()
        await asyncio.Event().wait()  # the rest of the body never comes
        raise AssertionError("unreachable")

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/api/v1/projects",
        "headers": [(b"content-length", b"100"), (b"content-type", b"application/json")],
    }
    limits = RequestLimits(app, max_body_bytes=1000, max_json_depth=8, body_timeout=0.05)
    asyncio.run(limits(scope, receive, send))
    assert reached == []
    assert sent[0]["status"] == 408
    assert (b"connection", b"close") in sent[0]["headers"]
    assert b"did not arrive within 0.05 seconds" in sent[1]["body"]


def test_a_real_server_closes_a_short_body_after_the_timeout(tmp_path: Path) -> None:
    with running_server(tmp_path, extra=("--body-timeout-seconds", "1")) as server:
        host, port = server.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=30) as conn:
            conn.sendall(
                b"POST /api/v1/projects HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                + f"Authorization: Bearer {server.token}\r\n".encode()
                + b"Content-Length: 100\r\n\r\n"
                + b'{"key": "sh'
            )
            answer = b""
            while chunk := conn.recv(65536):  # until the server closes the connection
                answer += chunk
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b"application/problem+json" in answer
