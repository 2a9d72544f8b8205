"""Request limits enforced before the application reads a body: size, JSON nesting and
strict JSON (:mod:`lockgate.strict_json`: no duplicate keys, NUL characters or numbers
other parsers read differently), and no NUL character in the path or query."""

from __future__ import annotations

import asyncio
import json
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lockgate import strict_json

__all__ = ["RequestLimits", "json_depth"]


def json_depth(body: bytes) -> int:
    """Deepest nesting of ``[`` / ``{`` in a JSON text (strings skipped); no parsing."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


class RequestLimits:
    """ASGI middleware: request ids, body size cap (413) and JSON depth cap (413)."""

    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int,
        max_json_depth: int,
        body_timeout: float = 5.0,
    ) -> None:
        self.app = app
        self.max_body = max_body_bytes
        self.max_depth = max_json_depth
        self.body_timeout = body_timeout
        """Seconds a client has to send its whole body (0: no limit); then 408."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        problem = _nul_in_url(scope)
        if problem is not None:
            await _invalid(send, problem)
            return
        request_id = headers.get(b"x-request-id", b"").decode("latin-1")[:64] or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            await self._reject(send_with_id, f"request body is larger than {self.max_body} bytes")
            return
        if scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE") and length is None:
            await self.app(scope, receive, send_with_id)
            return
        try:
            async with asyncio.timeout(self.body_timeout or None):
                body = await self._read(receive)
        except TimeoutError:
            # A body shorter than its Content-Length would hold the connection forever.
            await _timed_out(send_with_id, self.body_timeout)
            return
        if body is None:
            await self._reject(send_with_id, f"request body is larger than {self.max_body} bytes")
            return
        if self.max_depth and json_depth(body) > self.max_depth:
            await self._reject(send_with_id, f"JSON nesting deeper than {self.max_depth} levels")
            return
        problem = _strict_problem(scope, headers, body)
        if problem is not None:
            await _invalid(send_with_id, problem)
            return
        await self.app(scope, _replay(body, receive), send_with_id)

    async def _read(self, receive: Receive) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    async def _reject(self, send: Send, detail: str) -> None:
        body = json.dumps(
            {
                "type": "https://lockgate.dev/problems/payload-too-large",
                "title": "Payload too large",
                "status": 413,
                "detail": detail,
                "code": "payload_too_large",
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


async def _timed_out(send: Send, seconds: float) -> None:
    body = json.dumps(
        {
            "type": "https://lockgate.dev/problems/request-timeout",
            "title": "Request timeout",
            "status": 408,
            "detail": f"the request body did not arrive within {seconds:g} seconds",
            "code": "request_timeout",
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 408,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


STRICT_EXEMPT = ("/ofrep/",)
"""Paths that read their bodies strictly themselves and answer in their own format."""


def _nul_in_url(scope: Scope) -> strict_json.StrictJsonError | None:
    raw_path = scope.get("raw_path") or scope.get("path", "").encode()
    if b"%00" in raw_path or "\x00" in scope.get("path", ""):
        return strict_json.StrictJsonError("path", "contains a NUL character")
    if b"%00" in scope.get("query_string", b""):
        return strict_json.StrictJsonError("query", "contains a NUL character")
    return None


def _strict_problem(
    scope: Scope, headers: dict[bytes, bytes], body: bytes
) -> strict_json.StrictJsonError | None:
    content_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
    if not body or not (content_type == b"application/json" or content_type.endswith(b"+json")):
        return None
    if scope.get("path", "").startswith(STRICT_EXEMPT):
        return None
    try:
        strict_json.loads(body)
    except strict_json.StrictJsonError as problem:
        return problem
    except (ValueError, RecursionError):
        return None  # not JSON at all: the route's own parsing reports it
    return None


async def _invalid(send: Send, problem: strict_json.StrictJsonError) -> None:
    body = json.dumps(
        {
            "type": "https://lockgate.dev/problems/invalid-input",
            "title": "Invalid input",
            "status": 422,
            "detail": f"invalid request: {problem.field} {problem.message}",
            "code": "invalid_input",
            "errors": [{"field": problem.field, "message": problem.message}],
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 422,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _replay(body: bytes, original: Receive) -> Receive:
    """Hand the already-read body to the application, then pass through (disconnects)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await original()

    return receive
