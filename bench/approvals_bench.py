"""Runtime approval decisions: from an approver's decision to the waiting SDK.

Starts `lockgate serve` (a temporary data directory on SQLite, or a fresh PostgreSQL
database dropped afterwards), creates a project, a protected environment, a high-risk
`mode` behavior, a server SDK key and an approver (a user with the `approver` role and an
API token) through the API. Then `--processes` worker processes each open one real
`lockgate.sdk.Client` and make their share of `--pending + --decisions` approval requests
with `client.start_approval(...)`; each request is then waited on by its own thread
(`handle.wait()`, the SDK's long poll), which takes `time.monotonic()` when the decision
arrives.

Once every request is pending on the server (checked through the approvers' list), the
approver decides `--decisions` of them, `--interval` seconds apart, alternating approve and
deny, through `POST /api/v1/runtime-approvals/{id}/approve|deny`. The time is taken just
before each POST is sent and when its answer arrives. Since the decided requests are the
extra `--decisions`, at least `--pending` requests are pending at every decision. A
decision's latency is from the POST being sent (and, apart, from its answer arriving: the
decision is committed then) to the waiting SDK thread holding the decision. All processes
use CLOCK_MONOTONIC, so the times compare across processes. A decision not seen within
`--miss-after` seconds is missed; the state each SDK saw must be the one given.

Run it through `./bench/run approvals` (see docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx

from serverlib import (
    LockgateServer,
    api,
    cpu_seconds,
    fmt,
    machine,
    now_iso,
    percentile,
    pg_database,
    table,
    write_json,
)

PROJECT, ENV, BEHAVIOR = "bench", "production", "refund-agent"
GOAL_P99_MS = 1000.0
GOAL_PENDING = 200
APPROVER_PASSWORD = "approver-password-for-the-bench"


def summary(values: list[float]) -> dict[str, float | None]:
    ordered = sorted(values)
    return {
        "min_ms": ordered[0] if ordered else None,
        "p50_ms": percentile(ordered, 50),
        "p90_ms": percentile(ordered, 90),
        "p99_ms": percentile(ordered, 99),
        "max_ms": ordered[-1] if ordered else None,
    }


@contextlib.contextmanager
def server_on(db: str) -> Iterator[LockgateServer]:
    tmp = Path(tempfile.mkdtemp(prefix="lockgate-bench-approvals-"))
    try:
        with contextlib.ExitStack() as stack:
            url = (
                stack.enter_context(pg_database("lockgate_bench_approvals"))
                if db == "postgres"
                else ""
            )
            server = LockgateServer(tmp, url)
            try:
                server.start()
                yield server
            finally:
                server.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def setup(server: LockgateServer) -> tuple[str, str]:
    """Project, environment, behavior, server SDK key, approver: (SDK key, approver token)."""
    with server.client() as http:
        api(http, "POST", "/api/v1/projects", (201,), json={"key": PROJECT})
        env = {"key": ENV, "protected": True}
        api(http, "POST", f"/api/v1/projects/{PROJECT}/environments", (201,), json=env)
        flag = {"key": BEHAVIOR, "kind": "mode", "risk_tier": "high", "reason": "bench"}
        api(http, "POST", f"/api/v1/projects/{PROJECT}/flags", (201,), json=flag)
        keys = f"/api/v1/projects/{PROJECT}/environments/{ENV}/sdk-keys"
        key = api(http, "POST", keys, (201,), json={"kind": "server", "name": "bench"})
        user = {"username": "rita", "password": APPROVER_PASSWORD}
        api(http, "POST", "/api/v1/users", (201,), json=user)
        api(
            http,
            "PUT",
            f"/api/v1/projects/{PROJECT}/members/rita",
            (200,),
            json={"role": "approver"},
        )
    with httpx.Client(base_url=server.base_url, timeout=30) as person:  # rita logs in
        login = {"username": "rita", "password": APPROVER_PASSWORD}
        csrf = api(person, "POST", "/api/v1/auth/login", (200,), json=login).json()["csrf_token"]
        token = api(
            person,
            "POST",
            "/api/v1/tokens",
            (201,),
            json={"name": "bench"},
            headers={"X-CSRF-Token": csrf},
        )
    return str(key.json()["key"]), str(token.json()["token"])


# -- worker processes ----------------------------------------------------------------------------


@dataclass
class WorkerSpec:
    index: int
    url: str
    sdk_key: str
    requests: list[int]  # request numbers this worker makes
    timeout: float


def worker(spec: WorkerSpec, conn: Connection) -> None:
    """Make the requests, wait on each in a thread; report ids, then what each saw."""
    from lockgate.sdk import Client

    seen: dict[int, tuple[float, str]] = {}
    lock = threading.Lock()
    with Client(spec.sdk_key, spec.url, events=False, start=False) as client:
        handles = {}
        for number in spec.requests:
            handle = client.start_approval(
                BEHAVIOR,
                "refund",
                {"key": f"user-{number}", "order": number},
                f"refund order {number}",
                timeout=spec.timeout,
                idempotency_key=f"bench-{number}",
            )
            if handle.id is None:
                conn.send(("error", f"request {number} was not made: {handle.decision}"))
                return
            handles[handle.id] = handle

        def wait(approval_id: int) -> None:
            decision = handles[approval_id].wait()
            at = time.monotonic()
            with lock:
                seen[approval_id] = (at, decision.status.value)

        threads = [
            threading.Thread(target=wait, args=(i,), daemon=True, name=f"wait-{i}") for i in handles
        ]
        for thread in threads:
            thread.start()
        conn.send(("ready", sorted(handles)))
        command = conn.recv()  # "report" once the decisions are given and waited for
        assert command == "report"
        with lock:
            conn.send(("seen", dict(seen)))
        conn.recv()  # "stop": withdraw nothing, just close (the pending ones stay pending)


# -- the run -----------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    total = args.pending + args.decisions
    with server_on(args.db) as server:
        assert server.process is not None
        sdk_key, approver = setup(server)
        ctx = mp.get_context("spawn")
        pipes: list[Connection] = []
        procs = []
        numbers = list(range(total))
        started = time.monotonic()
        for index in range(args.processes):
            mine = numbers[index :: args.processes]
            parent, child = ctx.Pipe()
            spec = WorkerSpec(index, server.base_url, sdk_key, mine, args.timeout)
            proc = ctx.Process(target=worker, args=(spec, child), daemon=True)
            proc.start()
            pipes.append(parent)
            procs.append(proc)
        ids: list[int] = []
        try:
            for pipe in pipes:
                kind, payload = pipe.recv()
                if kind != "ready":
                    raise RuntimeError(f"a worker failed: {payload}")
                ids.extend(payload)
            made_after = time.monotonic() - started
            with server.client() as http:
                listed = api(
                    http,
                    "GET",
                    f"/api/v1/projects/{PROJECT}/runtime-approvals",
                    (200,),
                    params={"state": "pending", "limit": 1},
                ).json()
            pending_at_start = int(listed["total"])
            time.sleep(args.settle)  # every waiter is in its long poll
            ids.sort()
            decided = ids[: args.decisions]
            given: dict[int, tuple[float, float, str]] = {}
            server_cpu_before = cpu_seconds(server.process.pid)
            headers = {"Authorization": f"Bearer {approver}"}
            with server.client() as http:
                for n, approval_id in enumerate(decided):
                    verb = "approve" if n % 2 == 0 else "deny"
                    sent = time.monotonic()
                    api(
                        http,
                        "POST",
                        f"/api/v1/runtime-approvals/{approval_id}/{verb}",
                        (200,),
                        json={"comment": "bench"},
                        headers=headers,
                    )
                    answered = time.monotonic()
                    given[approval_id] = (
                        sent,
                        answered,
                        "approved" if verb == "approve" else "denied",
                    )
                    time.sleep(args.interval)
                time.sleep(args.miss_after)
                pending_at_end = int(
                    api(
                        http,
                        "GET",
                        f"/api/v1/projects/{PROJECT}/runtime-approvals",
                        (200,),
                        params={"state": "pending", "limit": 1},
                    ).json()["total"]
                )
            server_cpu = cpu_seconds(server.process.pid) - server_cpu_before
            seen: dict[int, tuple[float, str]] = {}
            for pipe in pipes:
                pipe.send("report")
            for pipe in pipes:
                kind, payload = pipe.recv()
                seen.update(payload)
            for pipe in pipes:
                pipe.send("stop")
        finally:
            for proc in procs:
                proc.join(10)
                if proc.is_alive():
                    proc.terminate()
    from_sent, from_answer, round_trip = [], [], []
    missed, wrong = [], []
    for approval_id, (sent, answered, state) in given.items():
        round_trip.append((answered - sent) * 1000)
        got = seen.get(approval_id)
        if got is None or got[0] - sent > args.miss_after:
            missed.append(approval_id)
            continue
        if got[1] != state:
            wrong.append((approval_id, state, got[1]))
        from_sent.append((got[0] - sent) * 1000)
        from_answer.append((got[0] - answered) * 1000)
    early = [i for i, (at, _) in seen.items() if i not in given]
    return {
        "benchmark": "approvals",
        "at": now_iso(),
        "machine": machine(),
        "options": vars(args),
        "db": args.db,
        "requests": total,
        "made_after_s": made_after,
        "pending_when_deciding_started": pending_at_start,
        "pending_at_end": pending_at_end,
        "decisions": len(given),
        "missed": missed,
        "wrong_state": wrong,
        "decided_without_a_decision": early,
        "latency_from_post_sent": summary(from_sent),
        "latency_from_post_answered": summary(from_answer),
        "decision_post_round_trip": summary(round_trip),
        "server_cpu_s_during_decisions": server_cpu,
        "goal": {"p99_ms": GOAL_P99_MS, "pending": GOAL_PENDING},
    }


def report(result: dict[str, Any]) -> None:
    print(
        f"\napprovals on {result['db']}: {result['requests']} requests made in "
        f"{result['made_after_s']:.1f} s; {result['pending_when_deciding_started']} pending "
        f"when the decisions started, {result['pending_at_end']} at the end"
    )
    rows = []
    for label, key in (
        ("decision POST sent -> SDK has it", "latency_from_post_sent"),
        ("decision POST answered -> SDK has it", "latency_from_post_answered"),
        ("decision POST round trip", "decision_post_round_trip"),
    ):
        s = result[key]
        rows.append([label, *(fmt(s[f"{p}_ms"]) for p in ("min", "p50", "p90", "p99", "max"))])
    print(table(["ms", "min", "p50", "p90", "p99", "max"], rows))
    print(
        f"decisions {result['decisions']}, missed {len(result['missed'])}, wrong state "
        f"{len(result['wrong_state'])}, answered without a decision "
        f"{len(result['decided_without_a_decision'])}; server CPU during the decisions "
        f"{result['server_cpu_s_during_decisions']:.2f} s"
    )
    p99 = result["latency_from_post_sent"]["p99_ms"]
    holds = (
        p99 is not None
        and p99 < GOAL_P99_MS
        and result["pending_when_deciding_started"] >= GOAL_PENDING + result["decisions"]
        and not result["missed"]
        and not result["wrong_state"]
    )
    print(
        f"goal: p99 < {GOAL_P99_MS:.0f} ms with {GOAL_PENDING} requests pending: "
        f"{'HOLDS' if holds else 'MISSED'}"
    )
    result["goal"]["holds"] = holds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pending", type=int, default=GOAL_PENDING, help="requests left pending")
    parser.add_argument("--decisions", type=int, default=200, help="requests decided")
    parser.add_argument("--processes", type=int, default=2, help="SDK worker processes")
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between decisions")
    parser.add_argument("--timeout", type=float, default=600.0, help="each request's timeout")
    parser.add_argument("--settle", type=float, default=1.0, help="pause before the decisions")
    parser.add_argument("--miss-after", type=float, default=5.0, help="a later decision is missed")
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="sqlite")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    results = []
    for db in ("sqlite", "postgres") if args.db == "both" else (args.db,):
        one = argparse.Namespace(**{**vars(args), "db": db, "json": None})
        result = run(one)
        report(result)
        results.append(result)
    write_json(args.json, {"runs": results} if len(results) > 1 else results[0])


if __name__ == "__main__":
    main()
