"""Reconnect storm: many SDK-like streams, the server killed and restarted under them.

Starts `lockgate serve` (temporary data directory, SQLite) with its soft RLIMIT_NOFILE
raised to the hard limit (inherited from this script), creates a flag and a server SDK
key, and opens `--streams` `GET /sdk/v1/stream` connections from `--processes` worker
processes. Each stream reconnects exactly as the Python SDK's sync loop does
(`lockgate.sdk.backoff`): full-jitter exponential backoff from 1 s doubling to 30 s, at least
the server's `Retry-After` when it sheds the stream (429/5xx), and resuming with
`Last-Event-ID`. Once all are open their backoff is reset, as for SDKs that had been
connected for more than a minute.

Then the server is killed (SIGKILL: no goodbye to anyone), stays down `--down` seconds,
and is started again on the same data directory and port; as soon as it is ready one flag
change goes through the API. A stream is *back and current* once it holds that change's
version (from a `snapshot` or a `change` event). Reported: how many streams were back and
current within `--deadline` seconds of the restart (goal: 95 %), the successful reconnects
per second (goal: the busiest second holds at most 20 % of them: the jitter works), how
many attempts the server shed with `503`/`429` (with `Retry-After`) or failed otherwise, and
any 5xx other than a shed, or a traceback in the server's log (goal: none).
Run it through `./bench/run storm` (see docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import multiprocessing as mp
import os
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from lockgate.sdk.backoff import Backoff, BackoffPolicy, retry_after_seconds
from propagation_bench import change_flag, nofile_limit, raise_nofile, servers, setup, summary
from serverlib import fmt, machine, now_iso, table, write_json

GOAL_BACK = 0.95
GOAL_BUSIEST = 0.20
CONNECT_TIMEOUT = 10.0


@dataclass
class StreamSpec:
    index: int
    url: str
    sdk_key: str
    streams: int
    run_timeout: float


class Stats:
    def __init__(self) -> None:
        self.open = 0
        self.attempts: list[tuple[float, str]] = []
        """(when, outcome) of every connection attempt: a status code or an error name."""
        self.held: dict[int, tuple[int, float]] = {}
        """Stream -> (version held, since when)."""
        self.current_at: dict[int, float] = {}
        self.target: int | None = None
        self.backoffs: list[Backoff] = []


def _retry_after(head: bytes) -> str | None:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"retry-after":
            return value.strip().decode("latin-1")
    return None


def _events(buffer: bytearray) -> list[tuple[str, int | None]]:
    out: list[tuple[str, int | None]] = []
    while (end := buffer.find(b"\n\n")) >= 0:
        block = bytes(buffer[:end])
        del buffer[: end + 2]
        name, ident = "", None
        for line in block.split(b"\n"):
            if line.startswith(b"event: "):
                name = line[7:].decode()
            elif line.startswith(b"id: ") and line[4:].isdigit():
                ident = int(line[4:])
        out.append((name, ident))
    return out


def _dechunk(raw: bytearray, out: bytearray) -> bool:
    while (line_end := raw.find(b"\r\n")) >= 0:
        size = int(bytes(raw[:line_end]).split(b";")[0], 16)
        if size == 0:
            return False
        if len(raw) < line_end + 2 + size + 2:
            return True
        out += raw[line_end + 2 : line_end + 2 + size]
        del raw[: line_end + 2 + size + 2]
    return True


async def _one_stream(number: int, spec: StreamSpec, stats: Stats, backoff: Backoff) -> None:
    parts = urlsplit(spec.url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    first = True
    while True:
        held = stats.held.get(number)
        resume = f"Last-Event-ID: {held[0]}\r\n" if held else ""
        request = (
            f"GET /sdk/v1/stream HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Authorization: Bearer {spec.sdk_key}\r\nAccept: text/event-stream\r\n"
            f"Cache-Control: no-cache\r\n{resume}\r\n"
        ).encode()
        writer = None
        connected_at: float | None = None
        retry_after: float | None = None
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port), CONNECT_TIMEOUT
            )
            writer.write(request)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), CONNECT_TIMEOUT)
            status = head.split(b" ", 2)[1].decode() if head.count(b" ") >= 2 else "?"
            if status != "200":
                retry_after = retry_after_seconds(_retry_after(head), time.time())
                if status in ("429", "503") and retry_after is None:
                    status += " without Retry-After"
            stats.attempts.append((time.monotonic(), status))
            if status == "200":
                connected_at = time.monotonic()
                raw, body = bytearray(), bytearray()
                while data := await reader.read(65536):
                    now = time.monotonic()
                    raw += data
                    more = _dechunk(raw, body)
                    for name, ident in _events(body):
                        if name in ("snapshot", "change") and ident is not None:
                            stats.held[number] = (ident, now)
                            target = stats.target
                            if target is not None and ident >= target:
                                stats.current_at.setdefault(number, now)
                            if first:
                                first = False
                                stats.open += 1
                    if not more:
                        break
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
            if connected_at is None:
                stats.attempts.append((time.monotonic(), type(exc).__name__))
        finally:
            if writer is not None:
                writer.close()
        healthy = 0.0 if connected_at is None else time.monotonic() - connected_at
        backoff.connection_ended(healthy)
        delay = backoff.next_delay()
        if retry_after is not None:
            delay = max(delay, retry_after)
        await asyncio.sleep(delay)


async def _worker(spec: StreamSpec, conn: Connection) -> None:
    stats = Stats()
    policy = BackoffPolicy()
    stats.backoffs = [Backoff(policy) for _ in range(spec.streams)]
    tasks = [
        asyncio.create_task(_one_stream(n, spec, stats, stats.backoffs[n]))
        for n in range(spec.streams)
    ]
    while await asyncio.to_thread(conn.poll, spec.run_timeout):
        command, value = conn.recv()
        if command == "stop":
            break
        if command == "reset":  # connected for over a minute, as far as backoff goes
            for backoff in stats.backoffs:
                backoff.reset()
        elif command == "target":
            stats.target = value
            for number, (version, when) in stats.held.items():
                if version >= value:
                    stats.current_at.setdefault(number, when)
        conn.send(
            {
                "open": stats.open,
                "current": len(stats.current_at),
                "attempts": stats.attempts if command == "report" else [],
                "current_at": list(stats.current_at.values()) if command == "report" else [],
            }
        )
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def worker_main(spec: StreamSpec, conn: Connection) -> None:
    raise_nofile()
    asyncio.run(_worker(spec, conn))


def _ask(conns: list[Connection], command: str, value: Any = None) -> list[dict[str, Any]]:
    for conn in conns:
        conn.send((command, value))
    out = []
    for index, conn in enumerate(conns):
        if not conn.poll(120):
            raise RuntimeError(f"storm worker {index} did not answer {command!r}")
        out.append(conn.recv())
    return out


def _log_problems(text: str) -> dict[str, int]:
    return {
        "tracebacks": text.count("Traceback (most recent call last)"),
        "error_lines": sum(1 for line in text.splitlines() if " ERROR" in line or "ERROR:" in line),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    nofile = raise_nofile()
    processes = args.processes
    per_process = [
        args.streams // processes + (1 if i < args.streams % processes else 0)
        for i in range(processes)
    ]
    print(
        f"storm: {args.streams:,} SDK-like streams from {processes} processes; server killed, "
        f"down {args.down:g} s, restarted (RLIMIT_NOFILE {nofile[0]}/{nofile[1]})",
        flush=True,
    )
    ctx = mp.get_context("spawn")
    settings = {}
    if args.max_new_streams_per_second is not None:
        settings["max_new_streams_per_second"] = str(args.max_new_streams_per_second)
    with servers(1, "sqlite", settings) as started:
        server = started[0]
        assert server.process is not None
        server_nofile = nofile_limit(server.process.pid)
        sdk_key, version = setup(server, 2)
        run_timeout = args.open_timeout + args.down + args.deadline + 300
        procs: list[Any] = []
        conns: list[Connection] = []
        try:
            for index, count in enumerate(per_process):
                parent, child = ctx.Pipe()
                spec = StreamSpec(index, server.base_url, sdk_key, count, run_timeout)
                proc = ctx.Process(target=worker_main, args=(spec, child), daemon=True)
                proc.start()
                child.close()
                procs.append(proc)
                conns.append(parent)
            began = time.monotonic()
            while (opened := sum(s["open"] for s in _ask(conns, "status"))) < args.streams:
                if time.monotonic() - began > args.open_timeout:
                    raise RuntimeError(f"only {opened} of {args.streams} streams opened")
                time.sleep(1)
            open_seconds = time.monotonic() - began
            print(f"  {opened:,} streams open in {open_seconds:.1f} s", flush=True)
            _ask(conns, "reset")
            time.sleep(2)
            first_log = server.process.log_tail(10_000) if server.process else ""
            killed = time.monotonic()
            os.kill(server.process.pid, signal.SIGKILL)
            server.process.proc.wait(10)
            print(f"  server killed; restarting in {args.down:g} s", flush=True)
            time.sleep(args.down)
            restarted = time.monotonic()
            server.start()
            ready = time.monotonic()
            print(f"  restarted; ready after {ready - restarted:.1f} s", flush=True)
            sent, answered, _ = change_flag(server, version, 1)
            with server.client() as http:
                target = int(
                    http.get("/sdk/v1/snapshot", headers={"Authorization": f"Bearer {sdk_key}"})
                    .headers["etag"]
                    .strip('"')
                )
            print(
                f"  change sent {sent - restarted:.1f} s after the restart (answered in "
                f"{(answered - sent) * 1000:.0f} ms): version {target}",
                flush=True,
            )
            _ask(conns, "target", target)
            while time.monotonic() - restarted < args.deadline:
                current = sum(s["current"] for s in _ask(conns, "status"))
                if current >= args.streams:
                    break
                time.sleep(1)
            report = _ask(conns, "report")
            assert server.process is not None
            second_log = server.process.log_tail(10_000)
        finally:
            for conn in conns:
                with contextlib.suppress(OSError):
                    conn.send(("stop", None))
            for proc in procs:
                proc.join(30)
                if proc.is_alive():
                    proc.terminate()
                    proc.join(5)
    attempts = sorted(a for s in report for a in s["attempts"] if a[0] >= killed)
    outcomes = Counter(outcome for _, outcome in attempts)
    reconnects = [when for when, outcome in attempts if outcome == "200"]
    per_second = Counter(int(when - restarted) for when in reconnects)
    busiest_second, busiest = max(per_second.items(), key=lambda kv: kv[1], default=(0, 0))
    busiest_share = busiest / len(reconnects) if reconnects else 1.0
    back = sorted(when - restarted for s in report for when in s["current_at"])
    within = sum(1 for t in back if t <= args.deadline)
    back_share = within / args.streams
    shed = sum(n for outcome, n in outcomes.items() if outcome in ("503", "429"))
    server_errors = {o: n for o, n in outcomes.items() if o[0] == "5" and o != "503"}
    problems = _log_problems(second_log)
    met = {
        "back_and_current": back_share >= GOAL_BACK,
        "busiest_second": busiest_share <= GOAL_BUSIEST,
        "shed_with_retry_after": not any("without" in o for o in outcomes),
        "no_5xx_crash": not server_errors and not problems["tracebacks"],
    }
    stats = summary(back)
    print(
        f"\nback and current within {args.deadline:g} s of the restart: {within:,} of "
        f"{args.streams:,} ({100 * back_share:.1f} %; goal {100 * GOAL_BACK:g} %); time after "
        f"the restart p50 {fmt(stats['p50_ms'], 2)} / p90 {fmt(stats['p90_ms'], 2)} / "
        f"max {fmt(stats['max_ms'], 2)} s"
    )
    print(
        f"successful reconnects: {len(reconnects):,}; busiest second: {busiest:,} "
        f"({100 * busiest_share:.1f} %, second {busiest_second} after the restart; goal <= "
        f"{100 * GOAL_BUSIEST:g} %)"
    )
    print(f"connection attempts since the kill, by outcome: {dict(outcomes)}")
    print(f"shed (503/429 with Retry-After): {shed:,}; other 5xx: {server_errors or 'none'}")
    print(f"server log after the restart: {problems}")
    print()
    print(
        table(
            ["second after restart", "reconnects"],
            [[str(sec), str(n)] for sec, n in sorted(per_second.items())],
        )
    )
    print("\ngoals: " + ", ".join(f"{k} {'met' if v else 'NOT met'}" for k, v in met.items()))
    return {
        "timestamp": now_iso(),
        "command": "storm",
        "machine": machine(),
        "options": {k: v for k, v in vars(args).items() if k != "json"},
        "rlimit_nofile": {"bench": list(nofile), "server": server_nofile},
        "seconds_to_open": open_seconds,
        "restart_ready_seconds": ready - restarted,
        "change_sent_after_restart_seconds": sent - restarted,
        "back_and_current": {
            "within_deadline": within,
            "share": back_share,
            "seconds_after_restart": {k.replace("_ms", "_s"): v for k, v in stats.items()},
        },
        "reconnects": len(reconnects),
        "reconnects_per_second_after_restart": {str(k): v for k, v in sorted(per_second.items())},
        "busiest_second": {"second": busiest_second, "reconnects": busiest, "share": busiest_share},
        "attempts_by_outcome": dict(outcomes),
        "shed": shed,
        "other_5xx": server_errors,
        "server_log_before_kill": _log_problems(first_log),
        "server_log_after_restart": problems,
        "goals": met,
        "load_average_at_end": list(os.getloadavg()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/run storm", description=__doc__.split("\n")[0])
    parser.add_argument("--streams", type=int, default=5000)
    parser.add_argument("--processes", type=int, default=5)
    parser.add_argument("--down", type=float, default=10.0, help="seconds the server stays down")
    parser.add_argument("--deadline", type=float, default=60.0)
    parser.add_argument("--open-timeout", type=float, default=120.0)
    parser.add_argument(
        "--max-new-streams-per-second",
        type=int,
        help="the server's admission limit (default: the server's default, 1000)",
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if args.streams < 1 or args.processes < 1:
        parser.error("--streams and --processes must be at least 1")
    if math.ceil(args.streams / args.processes) + 64 > raise_nofile()[0]:
        parser.error("too many streams per process for RLIMIT_NOFILE; add --processes")
    write_json(args.json, run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
