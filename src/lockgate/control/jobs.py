"""Background jobs, in one place: audit checkpoints, expiring and scheduled change requests,
runtime approvals past their deadline, decision records past their retention, the rollup
of metric summaries, cleanup rules (behaviors marked cleanup due).

:class:`BackgroundJobs` runs every job once per cycle. On PostgreSQL, where several
replicas share one database, a cycle runs only on the replica that holds a session-level
advisory lock for it (``pg_try_advisory_lock``): exactly one replica at a time, and
another takes over when it stops. On SQLite the server is the only process, so the cycle
runs in-process. Every action a job takes goes through the same use-cases as a person's,
as a system actor — never a side door.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from anyio import to_thread
from sqlalchemy import text

from lockgate.control.base import Services, publish_checkpoint, system_caller
from lockgate.store.db import is_unavailable

__all__ = [
    "GUARDRAILS_LOCK_KEY",
    "JOBS_LOCK_KEY",
    "BackgroundJobs",
    "Job",
    "guardrail_jobs",
    "standard_jobs",
]

JOBS_LOCK_KEY = 7_164_251_302
"""The advisory lock a replica holds while it runs a cycle of background jobs."""
GUARDRAILS_LOCK_KEY = 7_164_251_313
"""The advisory lock a replica holds while it runs a guardrail cycle (its own interval)."""

log = logging.getLogger("lockgate.jobs")


@dataclass(frozen=True)
class Job:
    name: str
    run: Callable[[], int]
    """Does the job's work once; returns how many things it acted on."""


def standard_jobs(
    services: Services,
    *,
    checkpoint_every: int,
    checkpoint_minutes: int,
    minute_retention_hours: int = 48,
) -> list[Job]:
    """The server's jobs, in the order a cycle runs them."""
    from lockgate.control.governance import requests, runtime

    jobs: list[Job] = []
    signer = services.signer
    if signer is not None and checkpoint_minutes > 0:
        from lockgate.store import checkpoints

        def checkpoint() -> int:
            queued = False
            with services.database.write() as conn:
                now = services.now()
                made = checkpoints.checkpoint_if_due(
                    conn, signer, checkpoint_every, checkpoint_minutes, now
                )
                if made is not None:
                    queued = publish_checkpoint(conn, signer, made, now)
            if made is not None and signer.anchor is not None:
                signer.anchor.publish([made])  # committed: publish it outside the database
            if queued and services.outbox_wake is not None:
                services.outbox_wake()
            return 0 if made is None else 1

        jobs.append(Job("audit-checkpoint", checkpoint))
    expirer = system_caller("change-request-expiry", source="system")
    scheduler = system_caller("change-request-scheduler", source="system")
    jobs.append(Job("change-request-expiry", lambda: requests.expire_due(services, expirer)))
    jobs.append(Job("change-request-schedule", lambda: requests.apply_due(services, scheduler)))
    jobs.append(Job("runtime-approval-timeout", lambda: runtime.expire_due(services)))
    if any(days > 0 for days in services.decision_retention.values()):
        from lockgate.control.evidence import decisions

        retention = services.decision_retention
        jobs.append(
            Job("decision-retention", lambda: decisions.apply_retention(services, retention))
        )
    if minute_retention_hours > 0:
        jobs.append(
            Job("metric-summary-rollup", lambda: roll_up_signals(services, minute_retention_hours))
        )
    from lockgate.control.lifecycle import marks

    jobs.append(Job("cleanup-rules", lambda: marks.run_cleanup_rules(services)))
    return jobs


def guardrail_jobs(services: Services) -> list[Job]:
    """The guardrail cycle: evaluate every guardrail, act on breaches, advance plans."""
    from lockgate.control.guardrails import cycle

    return [Job("guardrails", lambda: cycle.run_cycle(services).acted)]


def roll_up_signals(services: Services, retention_hours: int, *, limit: int = 5_000) -> int:
    """Roll metric summaries' minute rows older than ``retention_hours`` up into hour rows
    (at most ``limit`` minute rows per cycle; the rest in later cycles)."""
    from lockgate.signals.summaries import HOUR
    from lockgate.store.signals import roll_up_minutes

    cutoff = int(services.clock().timestamp()) - retention_hours * HOUR
    return roll_up_minutes(services.database, before=cutoff, resolution=HOUR, limit=limit)


class BackgroundJobs:
    """Runs a list of jobs in cycles, on one replica at a time."""

    def __init__(
        self,
        services: Services,
        jobs: list[Job],
        *,
        lock_key: int = JOBS_LOCK_KEY,
        observe: Callable[[str, bool, float], None] | None = None,
    ) -> None:
        self.services = services
        self.jobs = jobs
        self.lock_key = lock_key
        self.observe = observe
        """Told after each job's run: its name, whether it succeeded, how long it took."""

    @contextmanager
    def _leadership(self) -> Iterator[bool]:
        database = self.services.database
        if database.is_sqlite:
            yield True
            return
        with database.engine.connect() as conn:
            held = bool(
                conn.execute(
                    text("SELECT pg_try_advisory_lock(:key)"), {"key": self.lock_key}
                ).scalar()
            )
            conn.commit()
            try:
                yield held
            finally:
                if held:
                    conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self.lock_key})
                    conn.commit()

    def run_once(self) -> dict[str, int] | None:
        """One cycle: ``None`` if another replica holds the cycle, else what each job did.

        A failing job is logged and does not stop the others.
        """
        with self._leadership() as leader:
            if not leader:
                return None
            done: dict[str, int] = {}
            for job in self.jobs:
                started = time.perf_counter()
                try:
                    done[job.name] = job.run()
                except Exception:
                    log.exception("background job %s failed", job.name)
                    done[job.name] = -1
                if self.observe is not None:
                    self.observe(job.name, done[job.name] >= 0, time.perf_counter() - started)
            return done

    async def run_forever(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await to_thread.run_sync(self.run_once)
            except Exception as exc:  # the database may be away for a while: try next cycle
                if is_unavailable(exc):
                    log.warning("background jobs could not run: the database is unavailable")
                else:
                    log.exception("background jobs could not run")
