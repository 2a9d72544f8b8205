"""Many idle SSE streams on one `lockgate serve`: server memory per stream, and a change.

Starts `lockgate serve` (temporary data directory, SQLite) with its soft RLIMIT_NOFILE
raised to the hard limit (the server inherits it from this script, which raises its own
before starting it), creates a project, an environment, a flag and a server SDK key, and
then opens `--streams` `GET /sdk/v1/stream` connections from `--processes` worker processes
with a deliberately small client: asyncio streams speaking HTTP/1.1 by hand, no SDK, so
that the clients stay cheap. A stream counts as open once its first `snapshot` event has
arrived; a `503` from the server's admission limit is retried after its `Retry-After`.
Then:

- the server's RSS (VmRSS) before the streams, once they are open, and after an idle
  window of `--idle` seconds (long enough for one round of the server's 15 s heartbeats),
  with the server's CPU time during that window;
- one flag change through the management API: the time from sending the PATCH to each
  stream receiving its `change` event, over every open stream.

Run it through `./bench/run idle-streams` (see docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import multiprocessing as mp
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from propagation_bench import (
    change_flag,
    nofile_limit,
    raise_nofile,
    rss_mib,
    servers,
    setup,
    summary,
)
from serverlib import cpu_seconds, fmt, machine, now_iso, table, write_json

CONNECT_TIMEOUT = 60.0
_TAIL = 32  # bytes kept between reads, so that a marker split across two reads is found


@dataclass
class StreamSpec:
    index: int
    url: str
    sdk_key: str
    streams: int
    concurrency: int
    run_timeout: float


def _retry_after(head: bytes) -> float:
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"retry-after" and value.strip().isdigit():
            return float(value.strip())
    return 1.0


class StreamStats:
    def __init__(self) -> None:
        self.shed = 0
        self.open = 0
        self.closed = 0
        self.failures: Counter[str] = Counter()
        self.pings = 0
        self.change_at: list[float] = []
        self.counting_changes = False


async def _one_stream(
    spec: StreamSpec, stats: StreamStats, gate: asyncio.Semaphore, opened: asyncio.Event
) -> None:
    parts = urlsplit(spec.url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    request = (
        f"GET /sdk/v1/stream HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Authorization: Bearer {spec.sdk_key}\r\nAccept: text/event-stream\r\n"
        "Cache-Control: no-cache\r\n\r\n"
    ).encode()
    writer = None
    is_open = False
    try:
        async with gate:  # bounded connection attempts in flight; released once open
            while True:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(host, port), CONNECT_TIMEOUT
                )
                writer.write(request)
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), CONNECT_TIMEOUT)
                status = head.split(b" ", 2)[1].decode() if head.count(b" ") >= 2 else "?"
                if status != "503":
                    break
                # Shed by the server's admission limit: come back when it says.
                stats.shed += 1
                writer.close()
                await asyncio.sleep(_retry_after(head))
            if status != "200":
                stats.failures[f"HTTP {status}"] += 1
                return
            tail = b""
            while b"event: snapshot" not in tail:
                data = await asyncio.wait_for(reader.read(65536), CONNECT_TIMEOUT)
                if not data:
                    stats.failures["closed before the snapshot"] += 1
                    return
                tail = tail[-_TAIL:] + data
            stats.open += 1
            is_open = True
            if stats.open + sum(stats.failures.values()) >= spec.streams:
                opened.set()
        tail = b""
        seen_change = False
        while True:
            data = await reader.read(65536)
            if not data:
                break
            window = tail[-_TAIL:] + data
            if stats.counting_changes and not seen_change and b"event: change" in window:
                stats.change_at.append(time.monotonic())
                seen_change = True
            stats.pings += window.count(b": ping")
            tail = window
    except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
        stats.failures[
            type(exc).__name__ + (f" {exc.errno}" if isinstance(exc, OSError) else "")
        ] += 1
    finally:
        if is_open:
            stats.closed += 1
        if stats.open + sum(stats.failures.values()) >= spec.streams:
            opened.set()
        if writer is not None:
            writer.close()


async def _worker(spec: StreamSpec, conn: Connection) -> None:
    stats = StreamStats()
    gate = asyncio.Semaphore(spec.concurrency)
    opened = asyncio.Event()
    started = time.monotonic()
    tasks = [
        asyncio.create_task(_one_stream(spec, stats, gate, opened)) for _ in range(spec.streams)
    ]
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(opened.wait(), spec.run_timeout)
    conn.send(
        (
            "opened",
            {
                "worker": spec.index,
                "open": stats.open,
                "failures": dict(stats.failures),
                "shed_503": stats.shed,
                "seconds": time.monotonic() - started,
                "rss_mib": rss_mib(os.getpid()),
            },
        )
    )
    while True:
        if not await asyncio.to_thread(conn.poll, spec.run_timeout):
            break
        command = conn.recv()
        if command == "count-changes":
            stats.counting_changes = True
        elif command == "status":
            conn.send(
                (
                    "status",
                    {
                        "open": stats.open - stats.closed,
                        "pings": stats.pings,
                        "change_at": list(stats.change_at),
                        "failures": dict(stats.failures),
                    },
                )
            )
        else:  # "stop"
            break
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def worker_main(spec: StreamSpec, conn: Connection) -> None:
    raise_nofile()
    asyncio.run(_worker(spec, conn))


def _receive(conns: list[Connection], kind: str, timeout: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    out = []
    for index, conn in enumerate(conns):
        if not conn.poll(max(0.0, deadline - time.monotonic())):
            raise RuntimeError(f"stream worker {index} sent no {kind!r} within {timeout:.0f} s")
        got, payload = conn.recv()
        if got != kind:
            raise RuntimeError(f"stream worker {index} sent {got!r}, expected {kind!r}")
        out.append(payload)
    return out


def _broadcast(conns: list[Connection], message: str) -> None:
    for conn in conns:
        with contextlib.suppress(OSError):
            conn.send(message)


def run(args: argparse.Namespace) -> dict[str, Any]:
    nofile = raise_nofile()
    processes = args.processes or max(1, math.ceil(args.streams / 2500))
    per_process = [
        args.streams // processes + (1 if i < args.streams % processes else 0)
        for i in range(processes)
    ]
    need = max(per_process) + 64
    if need > nofile[0]:
        print(f"warning: {need} descriptors per worker exceed RLIMIT_NOFILE {nofile[0]}")
    print(
        f"idle-streams: {args.streams:,} streams from {processes} processes "
        f"(RLIMIT_NOFILE {nofile[0]}/{nofile[1]})",
        flush=True,
    )
    ctx = mp.get_context("spawn")
    with servers(1, "sqlite") as started:
        server = started[0]
        assert server.process is not None
        pid = server.process.pid
        server_nofile = nofile_limit(pid)
        sdk_key, version = setup(server, 1)
        rss_before = rss_mib(pid)
        run_timeout = args.open_timeout + args.idle + args.check_timeout + 120
        procs: list[Any] = []
        conns: list[Connection] = []
        try:
            for index, count in enumerate(per_process):
                parent, child = ctx.Pipe()
                spec = StreamSpec(
                    index, server.base_url, sdk_key, count, args.concurrency, run_timeout
                )
                proc = ctx.Process(target=worker_main, args=(spec, child), daemon=True)
                proc.start()
                child.close()
                procs.append(proc)
                conns.append(parent)
            opened = _receive(conns, "opened", args.open_timeout + 60)
            open_count = sum(o["open"] for o in opened)
            open_seconds = max(o["seconds"] for o in opened)
            time.sleep(2)
            rss_open = rss_mib(pid)
            cpu_start, idle_start = cpu_seconds(pid), time.monotonic()
            time.sleep(args.idle)
            idle_cpu = cpu_seconds(pid) - cpu_start
            idle_wall = time.monotonic() - idle_start
            rss_idle = rss_mib(pid)
            _broadcast(conns, "status")
            before_change = _receive(conns, "status", 60)
            _broadcast(conns, "count-changes")
            time.sleep(0.5)  # the workers read their pipes between network reads
            cpu_change = cpu_seconds(pid)
            sent, answered, _ = change_flag(server, version, 1)
            time.sleep(args.check_timeout)
            cpu_change = cpu_seconds(pid) - cpu_change
            _broadcast(conns, "status")
            after = _receive(conns, "status", 60)
            rss_end = rss_mib(pid)
        finally:
            _broadcast(conns, "stop")
            for proc in procs:
                proc.join(30)
                if proc.is_alive():
                    proc.terminate()
                    proc.join(5)
    arrivals = sorted((t - sent) * 1000 for s in after for t in s["change_at"])
    still_open = sum(s["open"] for s in before_change)
    failures: Counter[str] = Counter()
    for o in opened:
        failures.update(o["failures"])
    grown = None if rss_open is None or rss_before is None else rss_open - rss_before
    per_stream_kib = None if grown is None or not open_count else grown * 1024 / open_count
    stats = summary(arrivals)

    print(
        f"\nstreams: {open_count:,} of {args.streams:,} open in {open_seconds:.1f} s "
        f"(server RLIMIT_NOFILE {server_nofile}); {still_open:,} still open after "
        f"{args.idle:g} s idle"
    )
    if failures:
        print(f"  failures: {dict(failures)}")
    shed = sum(o.get("shed_503", 0) for o in opened)
    if shed:
        print(f"  shed by the server's admission limit (503, retried after Retry-After): {shed:,}")
    print("\nserver RSS (MiB)")
    print(
        table(
            ["before", "streams open", f"after {args.idle:g} s idle", "end", "per stream (KiB)"],
            [[fmt(rss_before), fmt(rss_open), fmt(rss_idle), fmt(rss_end), fmt(per_stream_kib)]],
            left=0,
        )
    )
    print(
        f"server CPU while idle: {idle_cpu:.2f} s over {idle_wall:.1f} s "
        f"({100 * idle_cpu / idle_wall:.1f} % of one core; heartbeats every 15 s)"
    )
    print(
        f"\none change: {len(arrivals):,} of {still_open:,} open streams got it within "
        f"{args.check_timeout:g} s; PATCH sent -> change event first {fmt(stats['min_ms'])} / "
        f"p50 {fmt(stats['p50_ms'])} / "
        f"p90 {fmt(stats['p90_ms'])} / p99 {fmt(stats['p99_ms'])} / max {fmt(stats['max_ms'])} ms "
        f"(PATCH answered after {(answered - sent) * 1000:.1f} ms); server CPU in those "
        f"{args.check_timeout:g} s: {cpu_change:.2f} s"
    )
    return {
        "timestamp": now_iso(),
        "command": "idle-streams",
        "machine": machine(),
        "options": {k: v for k, v in vars(args).items() if k != "json"} | {"processes": processes},
        "rlimit_nofile": {"bench": list(nofile), "server": server_nofile},
        "streams": {
            "requested": args.streams,
            "open": open_count,
            "seconds_to_open": open_seconds,
            "open_after_idle": still_open,
            "failures": dict(failures),
            "workers": opened,
        },
        "server_rss_mib": {
            "before": rss_before,
            "open": rss_open,
            "after_idle": rss_idle,
            "end": rss_end,
            "per_stream_kib": per_stream_kib,
        },
        "server_idle_cpu_seconds": idle_cpu,
        "load_average_at_end": list(os.getloadavg()),
        "idle_seconds": idle_wall,
        "change": {
            "received": len(arrivals),
            "open_streams": still_open,
            "patch_round_trip_ms": (answered - sent) * 1000,
            "server_cpu_seconds_in_window": cpu_change,
            "latency_ms": stats,
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bench/run idle-streams", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--streams", type=int, default=10_000, help="streams (default 10000)")
    parser.add_argument(
        "--processes", type=int, default=0, help="client processes (default: one per 2,500)"
    )
    parser.add_argument(
        "--concurrency", type=int, default=100, help="connection attempts in flight per process"
    )
    parser.add_argument("--open-timeout", type=float, default=300.0)
    parser.add_argument("--idle", type=float, default=20.0, help="idle window, seconds")
    parser.add_argument("--check-timeout", type=float, default=10.0)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    if args.streams < 1:
        parser.error("--streams must be at least 1")
    write_json(args.json, run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
