"""Rolling restarts of two replicas under a steady client loop: requests, failures, timing.

Starts two `lockgate serve` replicas on one fresh PostgreSQL database (127.0.0.1, fixed
ports). Client threads send requests back to back through the SDK's failover transport
(`lockgate.sdk.failover`, both replicas' URLs): a snapshot poll, then a remote evaluation,
and so on. One streaming SDK client (`Client(key, [url1, url2])`) follows along. Then, for
each round, each replica in turn gets SIGTERM, is waited for, started again on its port and
waited for until `/readyz` answers, and the other follows after a pause. At the end one
flag change is made and the time until the streaming client holds it is measured, and the
audit chain is verified.

A failed request is one the client loop saw fail after failover (every URL tried).
Reported: requests, failures (with their causes), failovers, req/s, latency p50/p99/max
(overall and during the restarts), per replica the time from SIGTERM to exit and from
start to ready, and the change's propagation to the streaming client.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lockgate.sdk import Client, SyncTuning
from lockgate.sdk.backoff import BackoffPolicy
from lockgate.sdk.failover import FailoverTransport
from lockgate.sdk.transport import HttpTransport
from serverlib import (
    LockgateServer,
    api,
    etag_version,
    fmt,
    machine,
    now_iso,
    percentile,
    pg_database,
    table,
    write_json,
)

PROJECT = "rolling"
ENV = "prod"
FLAG = "switch"
SHUTDOWN_TIMEOUT = 10.0
"""The servers' shutdown_timeout_seconds (the default)."""


class ClientLoop(threading.Thread):
    """Requests back to back through one failover transport until stopped."""

    def __init__(self, urls: list[str], key: str, index: int) -> None:
        super().__init__(name=f"client-loop-{index}", daemon=True)
        self.transport = FailoverTransport(
            [
                HttpTransport(
                    url, key, connect_timeout=2, read_timeout=10, user_agent="bench", proxy=""
                )
                for url in urls
            ]
        )
        self.index = index
        self.samples: list[tuple[float, float]] = []  # (started, seconds)
        self.failures: list[tuple[float, str]] = []
        self.halt = threading.Event()

    def run(self) -> None:
        poll = self.index % 2 == 0
        count = 0
        while not self.halt.is_set():
            started = time.monotonic()
            try:
                if poll:
                    self.transport.request("GET", "/sdk/v1/snapshot")
                else:
                    body = {"context": {"key": f"user-{self.index}-{count}"}}
                    self.transport.request(
                        "POST", "/sdk/v1/evaluate", json_body=body, idempotent=True
                    )
                self.samples.append((started, time.monotonic() - started))
            except Exception as exc:
                self.failures.append((started, f"{type(exc).__name__}: {exc}"))
            poll = not poll
            count += 1


@contextlib.contextmanager
def replicas() -> Iterator[list[LockgateServer]]:
    tmp = Path(tempfile.mkdtemp(prefix="lockgate-bench-rolling-"))
    started: list[LockgateServer] = []
    try:
        with pg_database("lockgate_bench_rolling") as url:
            try:
                for index in range(2):
                    data_dir = tmp / f"replica-{index + 1}"
                    data_dir.mkdir()
                    server = LockgateServer(data_dir, url)
                    if started:
                        server.token = started[0].token  # one database, one administrator
                        key = started[0].data_dir / "audit-signing.key"
                        shutil.copy2(key, data_dir / key.name)  # one signing key
                    started.append(server)
                    server.start()
                yield started
            finally:
                for server in started:
                    server.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def setup(server: LockgateServer) -> tuple[str, int]:
    """The project, the flag, a server SDK key; the flag configuration's version."""
    with server.client() as http:
        api(http, "POST", "/api/v1/projects", (201,), json={"key": PROJECT})
        api(http, "POST", f"/api/v1/projects/{PROJECT}/environments", (201,), json={"key": ENV})
        api(
            http,
            "POST",
            f"/api/v1/projects/{PROJECT}/flags",
            (201,),
            json={"key": FLAG, "kind": "boolean"},
        )
        url = f"/api/v1/projects/{PROJECT}/environments/{ENV}/sdk-keys"
        key = api(http, "POST", url, (201,), json={"kind": "server"}).json()["key"]
        config = f"/api/v1/projects/{PROJECT}/flags/{FLAG}/environments/{ENV}"
        version = etag_version(api(http, "GET", config, (200,)))
    return key, version


def restart(server: LockgateServer, shutdown_timeout: float) -> dict[str, float]:
    """SIGTERM, wait for the exit, start again on the same port, wait until ready."""
    assert server.process is not None
    signalled = time.monotonic()
    server.process.proc.send_signal(signal.SIGTERM)
    try:
        server.process.proc.wait(shutdown_timeout + 15)
    except subprocess.TimeoutExpired:
        server.process.proc.kill()
        server.process.proc.wait(5)
        raise RuntimeError(f"{server.base_url} did not stop on SIGTERM") from None
    exited = time.monotonic()
    server.start()
    ready = time.monotonic()
    return {
        "sigterm_to_exit_s": exited - signalled,
        "start_to_ready_s": ready - exited,
        "started_at": signalled,
        "ready_at": ready,
    }


def propagate(server: LockgateServer, sdk: Client, version: int) -> float | None:
    """Turn the flag on through `server`; seconds until the streaming client holds it."""
    held = sdk.detail(FLAG, {}, False).flag_version or 0
    config = f"/api/v1/projects/{PROJECT}/flags/{FLAG}/environments/{ENV}"
    with server.client() as http:
        sent = time.monotonic()
        api(http, "PATCH", config, (200,), json={"on": True}, headers={"If-Match": f'"{version}"'})
    deadline = sent + 15
    while time.monotonic() < deadline:
        if (sdk.detail(FLAG, {}, False).flag_version or 0) > held:
            return time.monotonic() - sent
        time.sleep(0.005)
    return None


def summary(values: list[float]) -> dict[str, float | None]:
    ordered = sorted(v * 1000 for v in values)
    return {
        "count": len(ordered),
        "p50_ms": percentile(ordered, 50),
        "p99_ms": percentile(ordered, 99),
        "max_ms": ordered[-1] if ordered else None,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    with replicas() as servers:
        key, version = setup(servers[0])
        urls = [server.base_url for server in servers]
        loops = [ClientLoop(urls, key, i) for i in range(args.clients)]
        tuning = SyncTuning(backoff=BackoffPolicy(initial=0.2, cap=2.0))
        sdk = Client(key, urls, events=False, tuning=tuning)
        restarts: list[dict[str, Any]] = []
        try:
            if not sdk.wait_until_ready(15):
                raise RuntimeError("the streaming SDK client did not get ready")
            began = time.monotonic()
            for loop in loops:
                loop.start()
            time.sleep(args.pause)
            for round_ in range(args.rounds):
                for index, server in enumerate(servers):
                    timing = restart(server, SHUTDOWN_TIMEOUT)
                    restarts.append({"round": round_ + 1, "replica": index + 1, **timing})
                    print(
                        f"  round {round_ + 1}, replica {index + 1}: SIGTERM -> exit "
                        f"{timing['sigterm_to_exit_s']:.2f} s, start -> ready "
                        f"{timing['start_to_ready_s']:.2f} s",
                        flush=True,
                    )
                    time.sleep(args.pause)
            ended = time.monotonic()
        finally:
            for loop in loops:
                loop.halt.set()
            for loop in loops:
                loop.join(15)
        try:
            propagation = propagate(servers[1], sdk, version)
        finally:
            sdk.close()
        for server in servers:
            server.stop()
        audit = servers[0].audit_verify()
    return {
        "loops": loops,
        "restarts": restarts,
        "seconds": ended - began,
        "window": (restarts[0]["started_at"], restarts[-1]["ready_at"]) if restarts else None,
        "propagation_s": propagation,
        "audit": audit,
    }


def report(args: argparse.Namespace, measured: dict[str, Any]) -> dict[str, Any]:
    loops: list[ClientLoop] = measured["loops"]
    samples = [s for loop in loops for s in loop.samples]
    failures = [f for loop in loops for f in loop.failures]
    failovers = sum(loop.transport.failovers for loop in loops)
    window = measured["window"]
    during = [d for started, d in samples if window and window[0] <= started <= window[1]]
    seconds = measured["seconds"]
    overall = summary([d for _, d in samples])
    in_window = summary(during)
    causes = Counter(cause for _, cause in failures)
    print()
    print(
        table(
            ["requests", "failed", "failovers", "req/s", "p50 ms", "p99 ms", "max ms"],
            [
                [
                    f"{len(samples) + len(failures):,}",
                    f"{len(failures)}",
                    f"{failovers}",
                    fmt((len(samples) + len(failures)) / seconds, 0),
                    fmt(overall["p50_ms"]),
                    fmt(overall["p99_ms"]),
                    fmt(overall["max_ms"]),
                ],
                [
                    f"{in_window['count']:,} during restarts",
                    "",
                    "",
                    "",
                    fmt(in_window["p50_ms"]),
                    fmt(in_window["p99_ms"]),
                    fmt(in_window["max_ms"]),
                ],
            ],
        )
    )
    for cause, count in causes.most_common(5):
        print(f"  failure x{count}: {cause}")
    stops = [r["sigterm_to_exit_s"] for r in measured["restarts"]]
    starts = [r["start_to_ready_s"] for r in measured["restarts"]]
    if stops:
        print(
            f"SIGTERM -> exit: max {max(stops):.2f} s; start -> ready: max {max(starts):.2f} s "
            f"({len(stops)} restarts)"
        )
    propagation = measured["propagation_s"]
    print(
        "change after the restarts -> streaming SDK client: "
        + ("not received within 15 s" if propagation is None else f"{propagation * 1000:.0f} ms")
    )
    print(f"audit verify: {'intact' if measured['audit']['intact'] else 'BROKEN'}")
    return {
        "benchmark": "rolling-restart",
        "date": now_iso(),
        "machine": machine(),
        "settings": {
            "rounds": args.rounds,
            "clients": args.clients,
            "pause_s": args.pause,
            "shutdown_timeout_s": SHUTDOWN_TIMEOUT,
        },
        "requests": len(samples) + len(failures),
        "failed": len(failures),
        "failure_causes": dict(causes),
        "failovers": failovers,
        "seconds": seconds,
        "requests_per_second": (len(samples) + len(failures)) / seconds,
        "latency_ms": overall,
        "latency_during_restarts_ms": in_window,
        "restarts": [
            {k: v for k, v in r.items() if k not in ("started_at", "ready_at")}
            for r in measured["restarts"]
        ],
        "change_to_streaming_client_ms": None if propagation is None else propagation * 1000,
        "audit_verify": measured["audit"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bench/run rolling-restart", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--rounds", type=int, default=3, help="rolling restarts (default 3)")
    parser.add_argument("--clients", type=int, default=4, help="client loops (default 4)")
    parser.add_argument("--pause", type=float, default=2.0, help="seconds between restarts")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.clients < 1:
        parser.error("--rounds and --clients must be at least 1")
    print(
        f"rolling-restart: 2 replicas on PostgreSQL, {args.clients} client loops, "
        f"{args.rounds} round(s), {args.pause:g} s between restarts",
        flush=True,
    )
    results = report(args, run(args))
    write_json(args.json, results)
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
