"""The hub writing a change to waiting streams itself (``_Sender.push``).

The ASGI ``send`` of each waiting stream is run by hand up to its first suspension. These
tests use a ``send`` that can be told to suspend (as a server's does under flow control)
or to fail, and check what the stream's bytes and state are in each case.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, MutableMapping
from typing import Any

from lockgate.delivery.hub import Event, Stream, encode_event
from lockgate.delivery.stream import _Sender


class ScriptedSend:
    """An ASGI ``send``: records bodies; suspends on ``gate`` while it is set; may fail."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.gate: asyncio.Future[None] | None = None
        self.fail: Exception | None = None

    async def __call__(self, message: MutableMapping[str, Any]) -> None:
        if self.fail is not None:
            raise self.fail
        if self.gate is not None:
            await self.gate  # flow control: the connection takes no more for now
        self.bodies.append(message["body"])


def change(since: int, version: int) -> Event:
    data = encode_event("change", version, f'{{"from":{since},"version":{version}}}')
    return Event("change", version, data, since)


def run(coroutine: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(coroutine, 10))


def test_a_push_that_does_not_suspend_is_written_at_once() -> None:
    async def main() -> None:
        send = ScriptedSend()
        stream = Stream(key_id=1, environment_id=1)
        sender = _Sender(stream, send, held=4)
        before = stream.last_sent
        assert sender.push(change(4, 5))
        assert send.bodies == [change(4, 5).data]  # written during the call
        assert sender.held == 5
        assert sender.finishing is None
        assert stream.last_sent >= before
        assert not stream.wake.is_set()  # the stream's task was not needed

    run(main())


def test_pushes_the_stream_cannot_take_are_left_to_its_task() -> None:
    async def main() -> None:
        send = ScriptedSend()
        stream = Stream(key_id=1, environment_id=1)
        sender = _Sender(stream, send, held=4)
        assert not sender.push(change(3, 5))  # not from the version it holds
        assert not sender.push(Event("snapshot", 5, b"id: 5\n\n"))  # not a change
        stream.close()
        assert not sender.push(change(4, 5))  # closing
        assert send.bodies == []
        assert sender.held == 4

    run(main())


def test_a_suspended_push_finishes_in_a_task_and_keeps_the_order() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        send = ScriptedSend()
        send.gate = loop.create_future()
        stream = Stream(key_id=1, environment_id=1)
        sender = _Sender(stream, send, held=4)
        assert sender.push(change(4, 5))
        assert send.bodies == []  # suspended: nothing written yet
        assert sender.held == 5  # but this event is the stream's next bytes
        finishing = sender.finishing
        assert finishing is not None
        assert not sender.push(change(5, 6))  # nothing overtakes it
        send.gate.set_result(None)
        send.gate = None
        await asyncio.wait_for(finishing, 5)
        assert send.bodies == [change(4, 5).data]
        assert getattr(sender, "finishing") is None  # noqa: B009 - mypy narrowed it above
        assert stream.wake.is_set()  # its task resumes and catches up from there
        assert stream.is_open()
        assert sender.push(change(5, 6))
        assert send.bodies[-1] == change(5, 6).data

    run(main())


def test_a_failing_send_closes_the_stream() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        send = ScriptedSend()
        send.fail = OSError("connection reset")
        stream = Stream(key_id=1, environment_id=1)
        sender = _Sender(stream, send, held=4)
        assert sender.push(change(4, 5))
        assert not stream.is_open()

        send.fail = None
        send.gate = loop.create_future()
        other = Stream(key_id=1, environment_id=1)
        suspended = _Sender(other, send, held=4)
        assert suspended.push(change(4, 5))
        assert suspended.finishing is not None
        send.gate.set_exception(OSError("connection reset while waiting"))
        await asyncio.wait([suspended.finishing], timeout=5)
        assert not other.is_open()  # failed after suspending: closed too
        assert other.wake.is_set()

    run(main())


def test_a_cancelled_finish_closes_the_stream() -> None:
    async def main() -> None:
        send = ScriptedSend()
        send.gate = asyncio.get_running_loop().create_future()
        stream = Stream(key_id=1, environment_id=1)
        sender = _Sender(stream, send, held=4)
        assert sender.push(change(4, 5))
        finishing = sender.finishing
        assert finishing is not None
        finishing.cancel()  # the server shutting down
        await asyncio.wait([finishing], timeout=5)
        assert finishing.cancelled()
        assert not stream.is_open()

    run(main())
