"""Background jobs: one cycle at a time across replicas on PostgreSQL; in-process on SQLite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lockgate.api.app import build_services
from lockgate.control.base import Services
from lockgate.control.jobs import BackgroundJobs, Job
from lockgate.settings import Settings


@pytest.fixture
def replica(settings: Settings) -> Iterator[Services]:
    """A second server process's services on the same database."""
    other = build_services(settings, run_migrations=False)
    try:
        yield other
    finally:
        other.database.dispose()


def test_a_cycle_runs_every_job_and_survives_a_failing_one(services: Services) -> None:
    ran: list[str] = []

    def broken() -> int:
        raise RuntimeError("the job's own bug")

    def step(name: str, result: int) -> Job:
        def run() -> int:
            ran.append(name)
            return result

        return Job(name, run)

    jobs = BackgroundJobs(services, [step("first", 1), Job("broken", broken), step("last", 2)])
    assert jobs.run_once() == {"first": 1, "broken": -1, "last": 2}
    assert ran == ["first", "last"]


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_only_one_replica_runs_a_cycle_at_a_time(services: Services, replica: Services) -> None:
    inside: list[dict[str, int] | None] = []
    other = BackgroundJobs(replica, [Job("count", lambda: 1)])

    def while_holding() -> int:
        inside.append(other.run_once())  # the other replica tries while this cycle runs
        return 1

    leader = BackgroundJobs(services, [Job("probe", while_holding)])
    assert leader.run_once() == {"probe": 1}
    assert inside == [None]
    assert other.run_once() == {"count": 1}  # and takes over once the lock is free


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_the_guardrail_cycle_runs_on_one_replica_and_beside_the_other_jobs(
    services: Services, replica: Services
) -> None:
    from lockgate.control.jobs import GUARDRAILS_LOCK_KEY, guardrail_jobs

    inside: list[dict[str, int] | None] = []
    other = BackgroundJobs(replica, guardrail_jobs(replica), lock_key=GUARDRAILS_LOCK_KEY)
    standard = BackgroundJobs(replica, [Job("count", lambda: 1)])

    def while_holding() -> int:
        inside.append(other.run_once())  # another replica's guardrail cycle: refused
        inside.append(standard.run_once())  # the other jobs have their own lock
        return 1

    leader = BackgroundJobs(services, [Job("probe", while_holding)], lock_key=GUARDRAILS_LOCK_KEY)
    assert leader.run_once() == {"probe": 1}
    assert inside == [None, {"count": 1}]
    assert other.run_once() == {"guardrails": 0}  # and takes over once the lock is free
