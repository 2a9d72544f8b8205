"""Creating and closing many SDK clients: no thread and no file descriptor left behind.

Starts `lockgate serve` (temporary data directory, SQLite), creates a flag and a server SDK
key, and then, in this process, creates `--clients` `lockgate.sdk.Client` instances
`--batch` at a time: each batch is waited on until every client is READY (its stream
open and the snapshot applied) and then closed. Reported: the time taken, the most threads
alive at once, and the threads and open file descriptors of this process before and
after (goal: after = before, plus the process's one shared stream-reader thread and its
three descriptors).
The suite runs the same check with 1,000 clients (tests/sdk/test_client_threads.py).
Run it through `./bench/run client-threads` (see docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

from lockgate.sdk import Client
from propagation_bench import raise_nofile, servers, setup
from serverlib import machine, now_iso, write_json

READER_FDS = 3
"""The shared stream reader's own descriptors: its epoll and its wake-up socket pair."""


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _lockgate_threads() -> list[str]:
    return sorted(t.name for t in threading.enumerate() if t.name.startswith("lockgate-"))


def run(args: argparse.Namespace) -> dict[str, Any]:
    raise_nofile()
    print(f"client-threads: {args.clients:,} SDK clients, {args.batch} at a time", flush=True)
    with servers(1, "sqlite") as started:
        server = started[0]
        sdk_key, _ = setup(server, 1)
        threads_before, fds_before = threading.active_count(), _fds()
        named_before = _lockgate_threads()
        most_threads = most_fds = 0
        not_ready = 0
        began = time.monotonic()
        for done in range(0, args.clients, args.batch):
            count = min(args.batch, args.clients - done)
            clients = [Client(sdk_key, server.base_url, events_interval=3600) for _ in range(count)]
            try:
                not_ready += sum(1 for c in clients if not c.wait_until_ready(30))
                most_threads = max(most_threads, threading.active_count())
                most_fds = max(most_fds, _fds())
            finally:
                for client in clients:
                    client.close()
            if (done + count) % (args.batch * 10) == 0:
                print(f"  {done + count:,} created and closed", flush=True)
        seconds = time.monotonic() - began
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # closing threads finish on their own
            left = [n for n in _lockgate_threads() if n not in named_before]
            if left in ([], ["lockgate-streams"]):
                break
            time.sleep(0.1)
        threads_after, fds_after = threading.active_count(), _fds()
        named_after = _lockgate_threads()
    left = [n for n in named_after if n not in named_before]
    met = (
        left in ([], ["lockgate-streams"])
        and fds_after <= fds_before + READER_FDS
        and not not_ready
    )
    print(
        f"\n{args.clients:,} clients created, READY and closed in {seconds:.1f} s "
        f"({not_ready} not READY within 30 s)\n"
        f"threads: {threads_before} before, at most {most_threads} during, {threads_after} after "
        f"(lockgate threads left: {left or 'none'})\n"
        f"file descriptors: {fds_before} before, at most {most_fds} during, {fds_after} after\n"
        f"goal (no thread but the shared stream reader, no descriptor left): "
        f"{'met' if met else 'NOT met'}"
    )
    return {
        "timestamp": now_iso(),
        "command": "client-threads",
        "machine": machine(),
        "options": {k: v for k, v in vars(args).items() if k != "json"},
        "seconds": seconds,
        "not_ready": not_ready,
        "threads": {"before": threads_before, "most": most_threads, "after": threads_after},
        "lockgate_threads_left": left,
        "fds": {"before": fds_before, "most": most_fds, "after": fds_after},
        "goal_met": met,
        "load_average_at_end": list(os.getloadavg()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bench/run client-threads", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--clients", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if args.clients < 1 or args.batch < 1:
        parser.error("--clients and --batch must be at least 1")
    write_json(args.json, run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
