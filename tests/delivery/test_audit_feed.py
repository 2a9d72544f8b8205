"""The audit feed: followers get the head, then every new head, and end when the server stops."""

from __future__ import annotations

import asyncio

from lockgate.delivery.audit_feed import AuditFeed


class Head:
    def __init__(self) -> None:
        self.seq = 7
        self.reads = 0

    def __call__(self) -> int:
        self.reads += 1
        return self.seq


def test_a_follower_gets_the_head_then_each_new_one_and_ends_on_close() -> None:
    async def scenario() -> tuple[list[int], int]:
        head = Head()
        feed = AuditFeed(head, poll_seconds=30.0)  # only wake-ups move it here
        feed.start(asyncio.get_running_loop())
        seen: list[int] = []

        async def follow() -> None:
            async for seq in feed.follow():
                seen.append(seq)

        task = asyncio.create_task(follow())
        while not seen:
            await asyncio.sleep(0.01)
        head.seq = 9
        feed.wake()  # a commit was published
        while len(seen) < 2:
            await asyncio.sleep(0.01)
        feed.close_all()
        await asyncio.wait_for(task, 5)
        return seen, feed.followers()

    seen, left = asyncio.run(scenario())
    assert seen == [7, 9]
    assert left == 0


def test_the_feed_polls_for_changes_nobody_published() -> None:
    async def scenario() -> list[int]:
        head = Head()
        feed = AuditFeed(head, poll_seconds=0.05)
        feed.start(asyncio.get_running_loop())
        seen: list[int] = []

        async def follow() -> None:
            async for seq in feed.follow():
                seen.append(seq)
                if len(seen) == 1:
                    head.seq = 12  # another replica appended
                if len(seen) == 2:
                    return

        await asyncio.wait_for(follow(), 5)
        feed.close_all()
        return seen

    assert asyncio.run(scenario()) == [7, 12]


def test_an_idle_feed_reads_nothing() -> None:
    async def scenario() -> int:
        head = Head()
        feed = AuditFeed(head, poll_seconds=0.01)
        feed.start(asyncio.get_running_loop())
        feed.wake()
        await asyncio.sleep(0.1)
        return head.reads

    assert asyncio.run(scenario()) == 0
