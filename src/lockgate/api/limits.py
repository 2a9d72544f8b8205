"""Request limits enforced before the application reads a body: size, JSON nesting and
strict JSON (:mod:`lockgate.strict_json`: no duplicate keys, NUL characters or numbers
other parsers read differently), and no NUL character in the path or query."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from array import array
from collections.abc import Awaitable, Callable
from itertools import accumulate

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lockgate import strict_json

__all__ = ["RequestLimits", "deeper_than", "json_depth"]


_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
"""A complete JSON string (escapes included); unrolled so that it never backtracks."""
_OPEN, _CLOSE = b"[{", b"]}"
_BRACKETS_ONLY = bytes(b for b in range(256) if b not in _OPEN + _CLOSE)
_AS_STEPS = bytes.maketrans(_OPEN + _CLOSE, b"\x01\x01\xff\xff")
"""Opening brackets to +1, closing ones to -1 (as signed bytes)."""


def json_depth(body: bytes) -> int:
    """Deepest nesting of ``[`` / ``{`` in a JSON text (strings skipped); no parsing.

    Every step runs at C speed: strings are removed by one regular expression, everything
    but brackets by ``bytes.translate``, and the running depth is an ``accumulate`` over the
    brackets as signed bytes. An unterminated string hides the rest of the text, as it would
    from a parser.
    """
    if not body.count(b"[") and not body.count(b"{"):
        return 0
    text = _STRING.sub(b"", body)
    text = text.split(b'"', 1)[0]  # an unterminated string runs to the end
    steps = array("b")
    steps.frombytes(text.translate(None, _BRACKETS_ONLY).translate(_AS_STEPS))
    return max(0, max(accumulate(steps), default=0))


def deeper_than(body: bytes, limit: int) -> bool:
    """Whether ``body`` nests deeper than ``limit``; counting brackets settles most bodies."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False  # even if every bracket opened inside the one before
    return json_depth(body) > limit


Authenticator = Callable[[Scope], Awaitable[Response | None]]
"""Checks a request's credential before its body is read: ``None`` to go on, or the
response that refuses it."""


class RequestLimits:
    """ASGI middleware: request ids, body size cap (413), credential check, JSON depth cap.

    In order, each step cheaper than the next: a declared length over the cap is refused
    unread; then ``authenticate`` (when given) refuses a missing or invalid credential
    before a byte of the body is read; then the body is read (up to the cap) and its
    nesting checked.
    """

    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int,
        max_json_depth: int,
        body_timeout: float = 5.0,
        authenticate: Authenticator | None = None,
    ) -> None:
        self.app = app
        self.max_body = max_body_bytes
        self.max_depth = max_json_depth
        self.body_timeout = body_timeout
        """Seconds a client has to send its whole body (0: no limit); then 408."""
        self.authenticate = authenticate

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
        if self.authenticate is not None:
            refused = await self.authenticate(scope)
            if refused is not None:
                await refused(scope, receive, send_with_id)
                return
        body = await self._checked_body(scope, headers, receive, send_with_id)
        if body is not None:
            await self.app(scope, _replay(body, receive), send_with_id)

    async def _checked_body(
        self, scope: Scope, headers: dict[bytes, bytes], receive: Receive, send: Send
    ) -> bytes | None:
        """The whole body once it passed every check; ``None`` once a refusal was sent."""
        try:
            async with asyncio.timeout(self.body_timeout or None):
                body = await self._read(receive)
        except TimeoutError:
            # A body shorter than its Content-Length would hold the connection forever.
            await _timed_out(send, self.body_timeout)
            return None
        if body is None:
            await self._reject(send, f"request body is larger than {self.max_body} bytes")
            return None
        if self.max_depth and deeper_than(body, self.max_depth):
            await self._reject(send, f"JSON nesting deeper than {self.max_depth} levels")
            return None
        problem = _strict_problem(scope, headers, body)
        if problem is not None:
            await _invalid(send, problem)
            return None
        return body

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
