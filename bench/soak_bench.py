"""Soak: SDK clients and remote evaluations for many minutes, one flag change per second.

Starts `lockgate serve` (temporary data directory, SQLite), creates a flag and a server
SDK key, and runs, for `--minutes` (30 by default), half the load of the propagation goal:
`--clients` (500) real `lockgate.sdk.Client` instances streaming from `--processes` worker
processes, `--rps` (50) remote evaluations per second (`POST /sdk/v1/evaluate`) from this
process, and one flag change per second through the management API. Every `--sample`
seconds it records the server's RSS (VmRSS), open file descriptors and threads.

Reported: those figures over time, the RSS growth from the first sample after the warm-up
(`--warmup` seconds, default a sixth of the run) to the end (goal: at most 10 %), whether
descriptors and threads stayed flat (goal: at the end at most 5, or 5 %, more than after
the warm-up: database connections and worker threads come and go),
failed requests, and whether every client ended on the last change's value.
Run it through `./bench/run soak` (see docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import os
import sys
import threading
import time
from collections import Counter
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx

from propagation_bench import (
    CONTEXT,
    FLAG,
    change_flag,
    raise_nofile,
    rss_mib,
    servers,
    setup,
    variation,
)
from serverlib import fmt, machine, now_iso, table, write_json

GOAL_RSS_GROWTH = 0.10


def _flat(before: int, after: int) -> bool:
    """No growth beyond noise: at most 5 (or 5 %) more at the end than after the warm-up
    (database connections and worker threads come and go)."""
    return after <= before + max(5, before // 20)


def _fds(pid: int) -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def _threads(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("Threads:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def worker_main(url: str, sdk_key: str, clients: int, conn: Connection) -> None:
    """``clients`` SDK clients; answers "check VALUE" with how many evaluate to VALUE."""
    from lockgate.sdk import Client

    raise_nofile()
    made = [Client(sdk_key, url, events_interval=60) for _ in range(clients)]
    ready = sum(1 for c in made if c.wait_until_ready(60))
    conn.send(ready)
    try:
        while True:
            command = conn.recv()
            if command == "stop":
                break
            expected = command.removeprefix("check ")
            conn.send(sum(1 for c in made if c.detail(FLAG, CONTEXT, None).value == expected))
    finally:
        for client in made:
            client.close()


class Evaluations(threading.Thread):
    """``rps`` remote evaluations per second until stopped; counts answers by status."""

    def __init__(self, url: str, sdk_key: str, rps: float) -> None:
        super().__init__(name="soak-evaluations", daemon=True)
        self.url, self.sdk_key, self.rps = url, sdk_key, rps
        self.stop = threading.Event()
        self.statuses: Counter[str] = Counter()

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.sdk_key}"}
        with httpx.Client(base_url=self.url, headers=headers, timeout=10) as http:
            step = 1.0 / self.rps
            due = time.monotonic()
            n = 0
            while not self.stop.is_set():
                try:
                    body = {"context": {"key": f"user-{n % 1000}"}}
                    status = http.post("/sdk/v1/evaluate", json=body).status_code
                    self.statuses[str(status)] += 1
                except httpx.HTTPError as exc:
                    self.statuses[type(exc).__name__] += 1
                n += 1
                due += step
                self.stop.wait(max(0.0, due - time.monotonic()))


def run(args: argparse.Namespace) -> dict[str, Any]:
    raise_nofile()
    seconds = args.minutes * 60
    warmup = args.warmup if args.warmup is not None else seconds / 6
    print(
        f"soak: {args.minutes:g} min, {args.clients} SDK clients in {args.processes} processes, "
        f"{args.rps:g} remote evaluations/s, one change per second (warm-up {warmup:.0f} s)",
        flush=True,
    )
    ctx = mp.get_context("spawn")
    samples: list[dict[str, Any]] = []
    change_failures: Counter[str] = Counter()
    with servers(1, "sqlite") as started:
        server = started[0]
        assert server.process is not None
        pid = server.process.pid
        sdk_key, version = setup(server, 1000)
        procs, conns = [], []
        evaluations = Evaluations(server.base_url, sdk_key, args.rps)
        try:
            per = [
                args.clients // args.processes + (1 if i < args.clients % args.processes else 0)
                for i in range(args.processes)
            ]
            for count in per:
                parent, child = ctx.Pipe()
                proc = ctx.Process(
                    target=worker_main,
                    args=(server.base_url, sdk_key, count, child),
                    daemon=True,
                )
                proc.start()
                child.close()
                procs.append(proc)
                conns.append(parent)
            ready = sum(conn.recv() for conn in conns if conn.poll(180))
            print(f"  {ready} of {args.clients} clients READY", flush=True)
            evaluations.start()
            began = time.monotonic()
            next_sample = began
            index = 0
            while (now := time.monotonic()) - began < seconds:
                if now >= next_sample:
                    sample = {
                        "t_s": round(now - began, 1),
                        "rss_mib": rss_mib(pid),
                        "fds": _fds(pid),
                        "threads": _threads(pid),
                        "load_average": os.getloadavg()[0],
                    }
                    samples.append(sample)
                    print(
                        f"  {sample['t_s']:7.0f} s  RSS {fmt(sample['rss_mib'])} MiB  "
                        f"fds {sample['fds']}  threads {sample['threads']}  "
                        f"load {sample['load_average']:.1f}",
                        flush=True,
                    )
                    next_sample += args.sample
                index += 1
                try:
                    _, _, version = change_flag(server, version, index)
                except Exception as exc:
                    change_failures[type(exc).__name__] += 1
                    with server.client() as http:
                        path = f"/api/v1/projects/bench/flags/{FLAG}/environments/production"
                        version = int(http.get(path).headers["etag"].strip('"'))
                time.sleep(max(0.0, began + index - time.monotonic()))
            evaluations.stop.set()
            evaluations.join(15)
            time.sleep(3)  # the last change reaches every client
            expected = variation(index)
            for conn in conns:
                conn.send(f"check {expected}")
            current = sum(conn.recv() for conn in conns if conn.poll(60))
            end = {
                "t_s": round(time.monotonic() - began, 1),
                "rss_mib": rss_mib(pid),
                "fds": _fds(pid),
                "threads": _threads(pid),
                "load_average": os.getloadavg()[0],
            }
            samples.append(end)
        finally:
            evaluations.stop.set()
            for conn in conns:
                with contextlib.suppress(OSError):
                    conn.send("stop")
            for proc in procs:
                proc.join(30)
                if proc.is_alive():
                    proc.terminate()
                    proc.join(5)
    base = next((s for s in samples if s["t_s"] >= warmup), samples[0])
    growth = (
        (end["rss_mib"] - base["rss_mib"]) / base["rss_mib"]
        if end["rss_mib"] and base["rss_mib"]
        else None
    )
    after = [s for s in samples if s["t_s"] >= base["t_s"]]
    fds_range = (min(s["fds"] for s in after), max(s["fds"] for s in after))
    threads_range = (min(s["threads"] for s in after), max(s["threads"] for s in after))
    flat = _flat(base["fds"], end["fds"]) and _flat(base["threads"], end["threads"])
    met = growth is not None and growth <= GOAL_RSS_GROWTH and flat
    failed = {k: v for k, v in evaluations.statuses.items() if k != "200"}
    print()
    print(
        table(
            ["", "RSS MiB", "fds", "threads"],
            [
                ["after warm-up", fmt(base["rss_mib"]), str(base["fds"]), str(base["threads"])],
                ["end", fmt(end["rss_mib"]), str(end["fds"]), str(end["threads"])],
            ],
        )
    )
    print(
        f"\nRSS growth after the warm-up: {fmt(None if growth is None else 100 * growth)} % "
        f"(goal <= {100 * GOAL_RSS_GROWTH:g} %); fds {fds_range[0]}-{fds_range[1]}, threads "
        f"{threads_range[0]}-{threads_range[1]} after the warm-up (flat at the end: {flat})"
    )
    print(
        f"changes: {index} ({dict(change_failures) or 'no failures'}); remote evaluations: "
        f"{sum(evaluations.statuses.values()):,} ({failed or 'all 200'}); clients on the last "
        f"change's value: {current} of {args.clients}"
    )
    print(f"goal: {'met' if met else 'NOT met'}")
    return {
        "timestamp": now_iso(),
        "command": "soak",
        "machine": machine(),
        "options": {k: v for k, v in vars(args).items() if k != "json"},
        "clients_ready": ready,
        "clients_current_at_end": current,
        "changes": index,
        "change_failures": dict(change_failures),
        "evaluations": dict(evaluations.statuses),
        "after_warmup": base,
        "end": end,
        "rss_growth": growth,
        "fds_range_after_warmup": list(fds_range),
        "threads_range_after_warmup": list(threads_range),
        "flat_fds_and_threads": flat,
        "goal_met": met,
        "samples": samples,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/run soak", description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--rps", type=float, default=50.0, help="remote evaluations per second")
    parser.add_argument("--sample", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--warmup", type=float, help="seconds (default: a sixth of the run)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if args.minutes <= 0 or args.clients < 1 or args.processes < 1 or args.rps <= 0:
        parser.error("--minutes, --clients, --processes and --rps must be positive")
    write_json(args.json, run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
