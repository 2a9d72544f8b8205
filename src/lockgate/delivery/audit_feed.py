"""Tells open dashboard pages that something was audited, so that they refresh.

Every change the control plane makes appends an audit entry, whichever way it came (the
API, the CLI, a contract apply, a guardrail, another replica). The feed watches the audit
chain's head: it reads it when a commit in this process is published (at once) and every
``poll_seconds`` otherwise (changes of other replicas and of background jobs that publish
nothing), and hands each new head to every follower. It reads only while someone follows:
an idle server does no work for it. Followers learn only that the head moved, never what
changed: each page then reads what its viewer may see through the ordinary use-cases.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

from anyio import to_thread

__all__ = ["AuditFeed"]

log = logging.getLogger(__name__)


class AuditFeed:
    def __init__(self, read_head: Callable[[], int], *, poll_seconds: float = 0.5) -> None:
        self._read_head = read_head
        self.poll_seconds = poll_seconds
        self.loop: asyncio.AbstractEventLoop | None = None
        self._followers: set[asyncio.Queue[int | None]] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._head = -1
        self.closing = False

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.closing = False
        self._wake = asyncio.Event()

    def wake(self, *_: object) -> None:
        """Thread-safe: read the head now (a commit was published)."""
        loop = self.loop
        if loop is None or loop.is_closed() or not self._followers:
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile (shutdown)
            loop.call_soon_threadsafe(self._wake.set)

    def followers(self) -> int:
        return len(self._followers)

    async def follow(self) -> AsyncIterator[int]:
        """The head now, then each new head, until the server stops (or the caller leaves)."""
        queue: asyncio.Queue[int | None] = asyncio.Queue(maxsize=1)
        self._followers.add(queue)
        self._ensure_running()
        try:
            if self.closing:
                return
            yield await self._current()
            while True:
                head = await queue.get()
                if head is None:
                    return
                yield head
        finally:
            self._followers.discard(queue)

    def close_all(self) -> None:
        """The server is stopping: end every follower now, and those that come later."""
        self.closing = True
        for queue in list(self._followers):
            _replace(queue, None)
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _current(self) -> int:
        head: int = await to_thread.run_sync(self._read_head)
        self._head = max(self._head, head)
        return head

    def _ensure_running(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._watch())

    async def _watch(self) -> None:
        while self._followers and not self.closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
            self._wake.clear()
            try:
                head = await to_thread.run_sync(self._read_head)
            except Exception:  # the database is away for a moment: try again next time
                log.warning("audit feed: could not read the audit head", exc_info=True)
                continue
            if head > self._head:
                self._head = head
                for queue in list(self._followers):
                    _replace(queue, head)
        self._task = None


def _replace(queue: asyncio.Queue[int | None], value: int | None) -> None:
    """Put ``value``, dropping what the follower has not taken yet (only the newest counts)."""
    with contextlib.suppress(asyncio.QueueEmpty):
        queue.get_nowait()
    queue.put_nowait(value)
