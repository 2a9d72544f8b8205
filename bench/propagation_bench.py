"""Change propagation to many networked SDK clients: management API write -> client evaluation.

Starts `lockgate serve` (a temporary data directory on SQLite; with `--replicas 2` two serve
processes on one fresh PostgreSQL database, dropped afterwards), creates a project, an
environment, a string flag and a server SDK key through the API, then spawns `--processes`
worker processes which together open `--clients` real `lockgate.sdk.Client` instances (each
its own SSE stream and sync thread; with two replicas the clients alternate between them)
and wait until every one is READY.

Then `--changes` changes, `--interval` seconds apart, go through the management API of
replica 1: each PATCH moves the flag's default to a new variation, so every change has its
own value. The time is taken just before each PATCH is sent. In the workers every client
has an `on_update` listener that takes the time and evaluates the flag with the client
(`client.detail`); a client-change's latency is the time from the PATCH being sent to the
client's first evaluation returning that change's value. All processes run on one machine
and use `time.monotonic()` (CLOCK_MONOTONIC, system-wide on Linux), so the times compare
across processes. A client-change not observed within `--miss-after` seconds is missed.

Reported: clients connected and the time until all were READY, latency percentiles over
all clients x changes (and per replica), misses, the PATCH round trip itself, the CPU time
spent by the clients and the servers while the changes propagate, and each server's RSS
(VmRSS) before the clients connect, once they are connected, and at the end.
Run it through `./bench/run propagation` (see docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import os
import resource
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from serverlib import (
    LockgateServer,
    api,
    cpu_seconds,
    etag_version,
    fmt,
    machine,
    now_iso,
    percentile,
    pg_database,
    table,
    write_json,
)

PROJECT, ENV, FLAG = "bench", "production", "propagation"
CONTEXT = {"key": "user-1"}
MAX_VARIATIONS = 100  # the API's limit; change i serves variation i % 100
GOAL_P99_MS = 100.0
GOAL_CLIENTS = 1000


def variation(index: int) -> str:
    return f"v{index % MAX_VARIATIONS}"


def raise_nofile() -> tuple[int, int]:
    """Soft RLIMIT_NOFILE up to the hard limit (inherited by the servers started after)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def rss_mib(pid: int) -> float | None:
    """VmRSS of a process, MiB (None once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def process_cpu() -> float:
    """User + system CPU seconds of this process, all threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def nofile_limit(pid: int) -> str:
    """`soft/hard` RLIMIT_NOFILE of another process, from /proc."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
            if line.startswith("Max open files"):
                soft, hard = line.split()[3:5]
                return f"{soft}/{hard}"
    return "?"


def summary(values: list[float]) -> dict[str, float | None]:
    """Percentiles of already sorted values."""
    return {
        "min_ms": values[0] if values else None,
        "p50_ms": percentile(values, 50),
        "p90_ms": percentile(values, 90),
        "p99_ms": percentile(values, 99),
        "max_ms": values[-1] if values else None,
    }


# -- servers -------------------------------------------------------------------------------------


@contextlib.contextmanager
def servers(
    replicas: int, db: str, settings: dict[str, str] | None = None
) -> Iterator[list[LockgateServer]]:
    """`replicas` started servers; several share one fresh PostgreSQL database.

    Each inherits this process's RLIMIT_NOFILE: call :func:`raise_nofile` first.
    """
    tmp = Path(tempfile.mkdtemp(prefix="lockgate-bench-propagation-"))
    started: list[LockgateServer] = []
    try:
        with contextlib.ExitStack() as stack:
            url = ""
            if replicas > 1 or db == "postgres":
                url = stack.enter_context(pg_database("lockgate_bench_propagation"))
            try:
                token = None
                for index in range(replicas):
                    data_dir = tmp / f"replica-{index + 1}"
                    data_dir.mkdir()
                    server = LockgateServer(data_dir, url, settings=dict(settings or {}))
                    if token is not None:
                        server.token = token  # one database: one bootstrap administrator
                    token = server.token
                    started.append(server)
                    server.start()  # one after the other: the first one migrates
                yield started
            finally:
                for server in started:
                    server.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def setup(server: LockgateServer, changes: int, reversal: str | None = None) -> tuple[str, int]:
    """Project, environment, the flag (serving v0) and a server SDK key.

    Returns the key and the flag configuration's version (for If-Match).
    """
    count = max(2, min(changes + 1, MAX_VARIATIONS))
    variations = [{"key": variation(i), "value": variation(i)} for i in range(count)]
    flags = f"/api/v1/projects/{PROJECT}/flags"
    with server.client() as http:
        api(http, "POST", "/api/v1/projects", (201,), json={"key": PROJECT})
        api(http, "POST", f"/api/v1/projects/{PROJECT}/environments", (201,), json={"key": ENV})
        body = {"key": FLAG, "kind": "string", "variations": variations}
        api(http, "POST", flags, (201,), json=body)
        # Served first: v0 (v1 with --reversal, whose kills and incidents serve v0).
        first = variation(1) if reversal else variation(0)
        config = {"on": True, "off_variation": variation(0), "default": {"variation": first}}
        response = api(
            http,
            "PATCH",
            f"{flags}/{FLAG}/environments/{ENV}",
            (200,),
            json=config,
            headers={"If-Match": '"1"'},
        )
        keys = f"/api/v1/projects/{PROJECT}/environments/{ENV}/sdk-keys"
        key = api(http, "POST", keys, (201,), json={"kind": "server", "name": "propagation"})
    return str(key.json()["key"]), etag_version(response)


def change_flag(server: LockgateServer, version: int, index: int) -> tuple[float, float, int]:
    """PATCH the flag to serve change `index`'s value: (sent, answered, new version)."""
    path = f"/api/v1/projects/{PROJECT}/flags/{FLAG}/environments/{ENV}"
    with server.client() as http:
        body = {"default": {"variation": variation(index)}}
        sent = time.monotonic()
        response = api(http, "PATCH", path, (200,), json=body, headers={"If-Match": f'"{version}"'})
        answered = time.monotonic()
    return sent, answered, etag_version(response)


REVERSALS = ("kill", "incident")
"""With ``--reversal``, the changes alternate: odd ones pull the flag back (a kill, or an
incident starting) so that every client evaluates the fallback ``v0``; even ones bring it
back (a restore, or the incident's end) to ``v1``."""


def reversal_value(index: int) -> str:
    return variation(0) if index % 2 else variation(1)


def reverse_flag(
    server: LockgateServer, kind: str, version: int, index: int, incident: list[int]
) -> tuple[float, float, int]:
    """Change `index` as a reversal: (sent, answered, the configuration's version)."""
    flag = f"/api/v1/projects/{PROJECT}/flags/{FLAG}"
    incidents = f"/api/v1/projects/{PROJECT}/incidents"
    reason = {"reason": f"propagation change {index}"}
    with server.client() as http:
        sent = time.monotonic()
        if kind == "kill" and index % 2:
            body = {"environments": [ENV], **reason}
            answer = api(http, "POST", f"{flag}/kill", (200,), json=body).json()
            version = int(answer["environments"][0]["version"])
        elif kind == "kill":
            path = f"{flag}/environments/{ENV}/restore"
            headers = {"If-Match": f'"{version}"'}
            version = etag_version(api(http, "POST", path, (200,), json=reason, headers=headers))
        elif index % 2:
            body = {"environment": ENV, **reason}
            incident[:] = [int(api(http, "POST", incidents, (201,), json=body).json()["id"])]
        else:
            api(http, "POST", f"{incidents}/{incident[0]}/end", (200,), json=reason)
        answered = time.monotonic()
    return sent, answered, version


# -- worker processes ----------------------------------------------------------------------------


@dataclass
class WorkerSpec:
    index: int
    urls: list[str]  # one per client, in order
    sdk_key: str
    ready_timeout: float
    run_timeout: float


def worker_main(spec: WorkerSpec, conn: Connection, go: Any) -> None:
    """One worker process: its clients, their observations, sent back over `conn`."""
    from lockgate.sdk import Client, SyncState

    observations: list[tuple[int, float, Any]] = []  # (client, monotonic time, value)
    state_changes: Counter[str] = Counter()
    clients: list[Client] = []
    failure = ""

    def listener(index: int, client: Client) -> Callable[[Any], None]:
        def on_update(_snapshot: Any) -> None:
            # The new snapshot is in place when listeners run: this evaluation sees it.
            observations.append((index, time.monotonic(), client.detail(FLAG, CONTEXT).value))

        return on_update

    def on_state(old: SyncState, new: SyncState, _reason: str) -> None:
        state_changes[f"{old}->{new}"] += 1

    conn.send(("imported", os.getpid()))
    if not go.wait(120):
        return
    started = time.monotonic()
    for index, url in enumerate(spec.urls):
        try:
            client = Client(spec.sdk_key, url, events=False, start=False)
            client.on_update(listener(index, client))
            client.on_state_change(on_state)
            client.start()
        except (RuntimeError, OSError, MemoryError) as exc:  # e.g. "can't start new thread"
            failure = f"client {index + 1}: {type(exc).__name__}: {exc}"
            break
        clients.append(client)
    created = time.monotonic()
    deadline = started + spec.ready_timeout
    ready = sum(c.wait_until_ready(max(0.0, deadline - time.monotonic())) for c in clients)
    conn.send(
        (
            "ready",
            {
                "worker": spec.index,
                "pid": os.getpid(),
                "requested": len(spec.urls),
                "created": len(clients),
                "ready": ready,
                "failure": failure,
                "started": started,
                "created_at": created,
                "ready_at": time.monotonic(),
                "threads": threading.active_count(),
                "rss_mib": rss_mib(os.getpid()),
            },
        )
    )
    cpu_ready = process_cpu()
    if conn.poll(spec.run_timeout):
        conn.recv()  # "stop"
    cpu_changes = process_cpu() - cpu_ready
    finals = Counter(str(c.detail(FLAG, CONTEXT).value) for c in clients)
    states = Counter(str(c.state) for c in clients)
    conn.send(
        (
            "result",
            {
                "worker": spec.index,
                "observations": list(observations),
                "final_values": dict(finals),
                "states": dict(states),
                "state_changes": dict(state_changes),
                "rss_mib": rss_mib(os.getpid()),
                "cpu_seconds_during_changes": cpu_changes,
            },
        )
    )
    for client in clients:
        client.close()


@dataclass
class Workers:
    """The worker processes this run started, and a pipe to each."""

    processes: list[Any] = field(default_factory=list)
    conns: list[Connection] = field(default_factory=list)

    def receive(self, kind: str, timeout: float) -> list[Any]:
        """One `kind` message from every worker, within `timeout` seconds in all."""
        deadline = time.monotonic() + timeout
        out = []
        for index, conn in enumerate(self.conns):
            if not conn.poll(max(0.0, deadline - time.monotonic())):
                raise RuntimeError(f"worker {index} sent no {kind!r} within {timeout:.0f} s")
            got, payload = conn.recv()
            if got != kind:
                raise RuntimeError(f"worker {index} sent {got!r}, expected {kind!r}")
            out.append(payload)
        return out

    def send(self, message: str) -> None:
        for conn in self.conns:
            with contextlib.suppress(OSError):
                conn.send(message)

    def join(self, timeout: float = 30) -> None:
        """Wait for our worker processes; terminate (by PID) any that linger."""
        deadline = time.monotonic() + timeout
        for process in self.processes:
            process.join(max(0.1, deadline - time.monotonic()))
            if process.is_alive():
                process.terminate()
                process.join(5)


def spread(clients: int, processes: int, urls: list[str]) -> list[list[str]]:
    """Client URLs per worker; clients alternate between replicas (global numbering)."""
    out: list[list[str]] = [[] for _ in range(processes)]
    for number in range(clients):
        out[number % processes].append(urls[number % len(urls)])
    return out


# -- the run -------------------------------------------------------------------------------------


@dataclass
class Change:
    index: int
    value: str
    sent: float
    answered: float


def make_changes(
    server: LockgateServer, count: int, interval: float, version: int, reversal: str | None = None
) -> list[Change]:
    done: list[Change] = []
    incident: list[int] = []
    start = time.monotonic() + 0.5
    for index in range(1, count + 1):
        time.sleep(max(0.0, start + (index - 1) * interval - time.monotonic()))
        if reversal is None:
            sent, answered, version = change_flag(server, version, index)
            done.append(Change(index, variation(index), sent, answered))
        else:
            sent, answered, version = reverse_flag(server, reversal, version, index, incident)
            done.append(Change(index, reversal_value(index), sent, answered))
    return done


def first_seen(
    changes: list[Change], seen: list[tuple[float, Any]], miss_after: float
) -> list[float | None]:
    """Per change: one client's latency (ms) to evaluate its value; None when missed."""
    seen = sorted(seen, key=lambda item: item[0])
    out: list[float | None] = []
    for change in changes:
        first = next((t for t, value in seen if t >= change.sent and value == change.value), None)
        if first is None or first - change.sent > miss_after:
            out.append(None)
        else:
            out.append((first - change.sent) * 1000)
    return out


@dataclass
class Measured:
    """Everything a run measured, for the report."""

    urls: list[str]
    plan: list[list[str]]
    ready: list[dict[str, Any]]
    results: list[dict[str, Any]]
    changes: list[Change]
    rss: dict[str, list[float | None]]
    server_cpu_during_changes: list[float]
    load: dict[str, list[float]]


def run(args: argparse.Namespace, db: str) -> Measured:
    with servers(args.replicas, db) as started:
        pids = [s.process.pid for s in started if s.process is not None]
        sdk_key, version = setup(started[0], args.changes, args.reversal)
        rss: dict[str, list[float | None]] = {"before": [rss_mib(pid) for pid in pids]}
        urls = [s.base_url for s in started]
        plan = spread(args.clients, args.processes, urls)
        ctx = mp.get_context("spawn")
        go = ctx.Event()
        workers = Workers()
        run_timeout = args.ready_timeout + args.changes * args.interval + args.miss_after + 120
        try:
            for index, worker_urls in enumerate(plan):
                parent, child = ctx.Pipe()
                spec = WorkerSpec(index, worker_urls, sdk_key, args.ready_timeout, run_timeout)
                process = ctx.Process(
                    target=worker_main, args=(spec, child, go), name=f"propagation-{index}"
                )
                process.daemon = True
                process.start()
                child.close()
                workers.processes.append(process)
                workers.conns.append(parent)
            workers.receive("imported", 120)
            go.set()
            ready = workers.receive("ready", args.ready_timeout + 60)
            time.sleep(args.settle)
            rss["connected"] = [rss_mib(pid) for pid in pids]
            load = {"before_changes": list(os.getloadavg())}
            cpu_before = [cpu_seconds(pid) for pid in pids]
            changes = make_changes(started[0], args.changes, args.interval, version, args.reversal)
            time.sleep(args.miss_after + 0.5)
            server_cpu = [cpu_seconds(pid) - c for pid, c in zip(pids, cpu_before, strict=True)]
            load["after_changes"] = list(os.getloadavg())
            workers.send("stop")
            results = workers.receive("result", 120)
            rss["end"] = [rss_mib(pid) for pid in pids]
        finally:
            workers.send("stop")
            workers.join()
    return Measured(urls, plan, ready, results, changes, rss, server_cpu, load)


def latencies(
    args: argparse.Namespace, m: Measured
) -> tuple[dict[str, list[float]], Counter[str], list[list[float | None]]]:
    """Sorted latencies by group ("all", "replica N"), misses by group, per client per change."""
    groups: dict[str, list[float]] = {"all": []}
    missed: Counter[str] = Counter()
    per_client: list[list[float | None]] = []
    for result, worker in zip(m.results, m.ready, strict=True):
        worker_urls = m.plan[result["worker"]][: worker["created"]]
        seen: list[list[tuple[float, Any]]] = [[] for _ in worker_urls]
        for client, moment, value in result["observations"]:
            seen[client].append((moment, value))
        for client, url in enumerate(worker_urls):
            group = f"replica {m.urls.index(url) + 1}"
            found = first_seen(m.changes, seen[client], args.miss_after)
            per_client.append(found)
            ok = [v for v in found if v is not None]
            groups.setdefault(group, []).extend(ok)
            groups["all"].extend(ok)
            missed[group] += len(found) - len(ok)
            missed["all"] += len(found) - len(ok)
    for values in groups.values():
        values.sort()
    return groups, missed, per_client


def fan_out(changes: int, per_client: list[list[float | None]]) -> tuple[list[float], list[float]]:
    """Per change, the latency of the first and of the last client to see it (sorted)."""
    firsts, lasts = [], []
    for index in range(changes):
        got = sorted(v for c in per_client if (v := c[index]) is not None)
        if got:
            firsts.append(got[0])
            lasts.append(got[-1])
    return sorted(firsts), sorted(lasts)


def report(
    args: argparse.Namespace, db: str, nofile: tuple[int, int], m: Measured
) -> dict[str, Any]:
    connected = sum(r["ready"] for r in m.ready)
    created = sum(r["created"] for r in m.ready)
    failures = [r["failure"] for r in m.ready if r["failure"]]
    ready_seconds = max(r["ready_at"] for r in m.ready) - min(r["started"] for r in m.ready)
    groups, missed, per_client = latencies(args, m)
    firsts, lasts = fan_out(len(m.changes), per_client)
    patch_ms = sorted((c.answered - c.sent) * 1000 for c in m.changes)
    final_values: Counter[str] = Counter()
    states: Counter[str] = Counter()
    state_changes: Counter[str] = Counter()
    for result in m.results:
        final_values.update(result["final_values"])
        states.update(result["states"])
        state_changes.update(result["state_changes"])
    client_cpu = sum(r["cpu_seconds_during_changes"] for r in m.results)
    applied = max(1, created * len(m.changes))
    expected_final = m.changes[-1].value if m.changes else variation(0)

    print(
        f"\nclients: {connected:,} READY of {args.clients:,} requested ({created:,} created) in "
        f"{ready_seconds:.2f} s; {sum(r['threads'] for r in m.ready):,} threads in the workers"
    )
    for failure in failures:
        print(f"  could not create a client: {failure}")
    rows = []
    for name, values in groups.items():
        if name != "all" and len(groups) == 2:
            continue  # one replica: its row would repeat "all"
        stats = summary(values)
        rows.append(
            [
                name,
                f"{len(values) + missed[name]:,}",
                *(fmt(stats[k]) for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms")),
                f"{missed[name]:,}",
            ]
        )
    print(
        f"\npropagation: PATCH sent -> a client's evaluation returns the new value "
        f"({len(m.changes)} changes, {args.interval:g} s apart)"
    )
    header = ["clients", "client-changes", "p50 ms", "p90 ms", "p99 ms", "max ms", "missed"]
    print(table(header, rows))
    print(
        f"per change, first client: p50 {fmt(percentile(firsts, 50))} ms; last client: "
        f"p50 {fmt(percentile(lasts, 50))} ms, max {fmt(lasts[-1] if lasts else None)} ms"
    )
    print(
        f"PATCH round trip (part of every latency): p50 {fmt(percentile(patch_ms, 50))} ms, "
        f"max {fmt(patch_ms[-1] if patch_ms else None)} ms"
    )
    in_order = [
        (
            (c.answered - c.sent) * 1000,
            max((v for pc in per_client if (v := pc[i]) is not None), default=None),
        )
        for i, c in enumerate(m.changes)
    ]
    print(
        "per change in order, PATCH round trip / last client (ms): "
        + ", ".join(f"{patch:.0f}/{fmt(last, 0)}" for patch, last in in_order)
    )
    servers_cpu = " + ".join(f"{c:.2f}" for c in m.server_cpu_during_changes)
    print(
        f"CPU while changing: clients {client_cpu:.2f} s ({client_cpu / applied * 1e6:,.0f} us "
        f"per client per change), server(s) {servers_cpu} s; load average "
        f"{m.load['before_changes'][0]:.1f} -> {m.load['after_changes'][0]:.1f}"
    )
    print(
        f"final evaluation in every client: {dict(final_values)} (expected {expected_final!r}); "
        f"states at the end: {dict(states)}"
    )
    unexpected = {k: v for k, v in state_changes.items() if k != "INITIALIZING->READY"}
    if unexpected:
        print(f"state changes besides INITIALIZING->READY: {unexpected}")
    rss_rows = [
        [f"replica {i + 1}", fmt(b), fmt(c), fmt(e)]
        for i, (b, c, e) in enumerate(
            zip(m.rss["before"], m.rss["connected"], m.rss["end"], strict=True)
        )
    ]
    print("\nserver RSS (MiB)")
    print(table(["server", "before clients", "clients connected", "end"], rss_rows))
    p99 = percentile(groups["all"], 99)
    holds = (
        p99 is not None and p99 <= GOAL_P99_MS and connected >= GOAL_CLIENTS and not missed["all"]
    )
    print(
        f"\ngoal p99 <= {GOAL_P99_MS:g} ms at {GOAL_CLIENTS:,} clients: "
        f"{'HOLDS' if holds else 'MISSED'} (p99 {fmt(p99)} ms, {connected:,} clients, "
        f"{missed['all']:,} missed)"
    )
    return {
        "timestamp": now_iso(),
        "command": "propagation",
        "machine": machine(),
        "load_average": m.load,
        "options": {
            "clients": args.clients,
            "processes": args.processes,
            "changes": args.changes,
            "interval_s": args.interval,
            "replicas": args.replicas,
            "reversal": args.reversal,
            "db": db,
            "miss_after_s": args.miss_after,
        },
        "rlimit_nofile": list(nofile),
        "clients": {
            "requested": args.clients,
            "created": created,
            "ready": connected,
            "seconds_until_all_ready": ready_seconds,
            "creation_failures": failures,
            "workers": m.ready,
        },
        "latency_ms": {
            name: summary(values) | {"count": len(values)} for name, values in groups.items()
        },
        "missed": dict(missed),
        "per_change_first_client_ms": summary(firsts),
        "per_change_last_client_ms": summary(lasts),
        "patch_round_trip_ms": summary(patch_ms),
        "changes": [c.__dict__ for c in m.changes],
        "client_cpu_seconds_during_changes": client_cpu,
        "server_cpu_seconds_during_changes": m.server_cpu_during_changes,
        "final_values": dict(final_values),
        "expected_final_value": expected_final,
        "states_at_end": dict(states),
        "state_changes": dict(state_changes),
        "server_rss_mib": m.rss,
        "goal": {"p99_ms": GOAL_P99_MS, "clients": GOAL_CLIENTS, "holds": holds},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bench/run propagation", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--clients", type=int, default=1000, help="SDK clients (default 1000)")
    parser.add_argument("--processes", type=int, default=4, help="worker processes (default 4)")
    parser.add_argument("--changes", type=int, default=20, help="flag changes (default 20)")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between changes")
    parser.add_argument("--replicas", type=int, choices=(1, 2), default=1)
    parser.add_argument(
        "--db",
        choices=("sqlite", "postgres"),
        default="sqlite",
        help="database of a single replica (two replicas always share a PostgreSQL database)",
    )
    parser.add_argument("--miss-after", type=float, default=5.0, help="seconds (default 5)")
    parser.add_argument("--ready-timeout", type=float, default=180.0, help="seconds")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds before measuring")
    parser.add_argument(
        "--reversal",
        choices=REVERSALS,
        help="instead of PATCHes: kill and restore, or start and end an incident, in turn",
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    if args.clients < 1 or args.processes < 1 or args.changes < 1:
        parser.error("--clients, --processes and --changes must be at least 1")
    args.processes = min(args.processes, args.clients)
    nofile = raise_nofile()
    db = "postgres" if args.replicas > 1 else args.db
    print(
        f"propagation: {args.clients} clients in {args.processes} processes, {args.changes} "
        f"changes {args.interval:g} s apart, {args.replicas} replica(s) on {db}"
        + (f", as {args.reversal}s" if args.reversal else ""),
        flush=True,
    )
    results = report(args, db, nofile, run(args, db))
    write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
