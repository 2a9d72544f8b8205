"""The SDK change stream (``GET /sdk/v1/stream``), written straight to the ASGI server.

One coroutine per connected SDK: it sends ``retry``, the first event (the snapshot, or
the change since ``Last-Event-ID``, or nothing when the SDK is current), then one event
each time the hub wakes it, covering everything since the version it last sent; and a
``: ping`` comment when the hub's heartbeat ticker finds the stream idle. A second, idle
task per stream waits for the client to disconnect.

A change reaches every stream of its environment at once, so the cost per stream and
event is what bounds propagation: the loop sends each event with one ``send`` call to the
server, without a response class, middleware or timer per wait in between. It is used by
the route (after authentication) and by :class:`~lockgate.delivery.fastpath.DeliveryFastPath`
(keys already in the cache), identically.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Coroutine, Generator
from typing import Any

from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from lockgate.delivery.hub import DeliveryHub, EnvironmentState, Event, Stream

__all__ = ["STREAM_HEADERS", "EventStreamResponse", "last_event_id", "serve_stream"]

STREAM_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]
_RETRY = b"retry: 1000\n\n"
_PING = b": ping\n\n"


def last_event_id(value: str | None) -> int | None:
    """The version an SDK resumes from (``Last-Event-ID``), if it is one."""
    value = (value or "").strip()
    return int(value) if value.isdigit() and len(value) <= 18 else None


def _body(data: bytes) -> Message:
    return {"type": "http.response.body", "body": data, "more_body": True}


async def serve_stream(
    hub: DeliveryHub,
    state: EnvironmentState,
    key_id: int,
    since: int | None,
    receive: Receive,
    send: Send,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """Stream ``state``'s changes to one SDK until it leaves or the stream is closed."""
    if since is not None and since > state.version:
        hub.notify([state.environment_id])  # this replica may not have heard of it yet
    stream = hub.attach(state, key_id)
    watcher = asyncio.create_task(_close_on_disconnect(receive, stream))
    try:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": STREAM_HEADERS + (headers or []),
            }
        )
        await send(_body(_RETRY))
        held = await _first_event(hub, state, since, stream, send)
        await _follow(hub, state, stream, held, send)
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    except OSError:
        pass  # the connection is gone; nothing to tell anyone
    finally:
        watcher.cancel()
        hub.detach(state, stream)


async def _first_event(
    hub: DeliveryHub, state: EnvironmentState, since: int | None, stream: Stream, send: Send
) -> int:
    if since is None or since > state.version:
        event = state.snapshot_event()  # a fresh client, or one ahead of this server
    elif since < state.version:
        event = await hub.catch_up(state, since)
    else:
        return state.version  # already current
    await send(_body(event.data))
    stream.sent()
    return event.version


async def _follow(
    hub: DeliveryHub, state: EnvironmentState, stream: Stream, held: int, send: Send
) -> None:
    sender = _Sender(stream, send, held)
    while stream.is_open():
        if sender.finishing is not None:
            await asyncio.wait([sender.finishing])  # an event the hub started is being sent
            continue
        if state.version > sender.held:
            event = await hub.catch_up(state, sender.held)
            if not stream.is_open():
                return  # revoked meanwhile: not one more change
            await send(_body(event.data))
            stream.sent()
            sender.held = event.version
            continue
        if stream.ping:
            stream.ping = False
            await send(_body(_PING))
            stream.sent()
            continue
        stream.wake.clear()
        if state.version > sender.held or stream.ping or not stream.is_open():
            continue
        stream.push = sender.push
        try:
            await stream.wake.wait()
        finally:
            stream.push = None


class _Sender:
    """Lets the hub write the next change itself while the stream's task waits.

    The ASGI server's ``send`` only suspends when the connection cannot take more data
    for now (flow control). So :meth:`push` runs it up to its first suspension right
    away: usually it completes there, and the event was written without scheduling the
    stream's task at all. If it does suspend, a task finishes it, and the stream's own
    loop waits for that task before it writes anything else.
    """

    __slots__ = ("finishing", "held", "send", "stream")

    def __init__(self, stream: Stream, send: Send, held: int) -> None:
        self.stream = stream
        self.send = send
        self.held = held
        self.finishing: asyncio.Task[None] | None = None

    def push(self, event: Event) -> bool:
        stream = self.stream
        if self.finishing is not None or not stream.is_open() or event.since != self.held:
            return False  # busy, closing, or not the change it needs: its task catches up
        sending = self.send(_body(event.data))
        self.held = event.version  # from here on, this event is this stream's next bytes
        if not isinstance(sending, Coroutine):  # not a coroutine: no running it by hand
            self._finish_in_task(_awaited(sending))
            return True
        try:
            waiting = sending.send(None)
        except StopIteration:
            stream.sent()
            return True
        except Exception:
            stream.close()  # the connection failed; the task ends the response
            return True
        self._finish_in_task(_Resumed(sending, waiting).run())
        return True

    def _finish_in_task(self, rest: Coroutine[Any, Any, None]) -> None:
        self.finishing = asyncio.get_running_loop().create_task(rest)
        self.finishing.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self.finishing = None
        if task.cancelled() or task.exception() is not None:
            self.stream.close()
        else:
            self.stream.sent()
        self.stream.wake.set()


async def _awaited(awaitable: Awaitable[None]) -> None:
    await awaitable


class _Resumed:
    """Continues a coroutine that was started by hand and suspended on ``waiting``."""

    __slots__ = ("coro", "waiting")

    def __init__(self, coro: Coroutine[Any, Any, None], waiting: Any) -> None:
        self.coro = coro
        self.waiting = waiting

    async def run(self) -> None:
        await self

    def __await__(self) -> Generator[Any, Any, None]:
        value = self.waiting
        while True:
            try:
                received = yield value
            except GeneratorExit:
                self.coro.close()
                raise
            except BaseException as exc:
                try:
                    value = self.coro.throw(exc)
                except StopIteration:
                    return
            else:
                try:
                    value = self.coro.send(received)
                except StopIteration:
                    return


async def _close_on_disconnect(receive: Receive, stream: Stream) -> None:
    with contextlib.suppress(Exception):
        while (await receive())["type"] != "http.disconnect":
            pass
    stream.close()


class EventStreamResponse(Response):
    """The stream as a response object, for the route (which authenticated the key)."""

    media_type = "text/event-stream"

    def __init__(
        self, hub: DeliveryHub, state: EnvironmentState, key_id: int, since: int | None
    ) -> None:
        super().__init__(status_code=200)
        self.hub = hub
        self.state = state
        self.key_id = key_id
        self.since = since

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await serve_stream(self.hub, self.state, self.key_id, self.since, receive, send)
