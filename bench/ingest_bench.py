"""Metric summary ingestion: summary rows per second through ``POST /sdk/v1/metrics``.

Starts `lockgate serve` (a temporary data directory on SQLite, or a fresh PostgreSQL
database dropped afterwards), creates a project, an environment, a behavior and a server
SDK key through the API. Then `--concurrency` client threads each post batches of
`--batch` summary rows for `--seconds` seconds. The rows of a batch are distinct keys
(behavior x variation x metric x cohort in the current minute) drawn from a pool of
`--keys` keys, so most requests add into rows that exist (the steady state of many SDK
instances reporting the same behaviors) and some create rows. Bodies are encoded before
the clock starts, so the client's own cost is sending and reading.

Reported: rows/s and requests/s over the run, per-request latency (p50/p95/p99/max, from
sending to the answer), refused requests, the server's CPU seconds, and a check that the
stored counts add up to exactly what was sent (read from the database after the run).

Run it through `./bench/run ingest` (see docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import random
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

from serverlib import (
    LockgateServer,
    api,
    cpu_seconds,
    fmt,
    lockgate_server,
    machine,
    now_iso,
    percentile,
    table,
    write_json,
)

PROJECT, ENV, BEHAVIOR = "bench", "production", "checkout"


def setup(server: LockgateServer) -> str:
    with server.client() as http:
        api(http, "POST", "/api/v1/projects", (201,), json={"key": PROJECT})
        api(http, "POST", f"/api/v1/projects/{PROJECT}/environments", (201,), json={"key": ENV})
        flag = {"key": BEHAVIOR, "kind": "boolean"}
        api(http, "POST", f"/api/v1/projects/{PROJECT}/flags", (201,), json=flag)
        keys = f"/api/v1/projects/{PROJECT}/environments/{ENV}/sdk-keys"
        key = api(http, "POST", keys, (201,), json={"kind": "server", "name": "bench"})
    return str(key.json()["key"])


def bodies(count: int, batch: int, keys: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    minute = datetime.now(UTC).replace(second=0, microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
    pool = [
        (f"behavior-{i % 50}", ("stable", "generated")[i % 2], f"metric-{(i // 100) % 10}", f"c{i}")
        for i in range(keys)
    ]
    out = []
    for _ in range(count):
        rows = []
        for behavior, variation, metric, cohort in rng.sample(pool, batch):
            rows.append(
                {
                    "behavior": behavior,
                    "variation": variation,
                    "metric": metric,
                    "cohort": cohort,
                    "start": minute,
                    "count": 3,
                    "sum": 1.5,
                    "sum_sq": 0.75,
                }
            )
        out.append(json.dumps({"summaries": rows}, separators=(",", ":")).encode())
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    with lockgate_server(args.db) as server:
        key = setup(server)
        prepared = bodies(64, args.batch, args.keys, args.seed)
        latencies: list[float] = []
        refused: list[int] = []
        sent = [0]
        lock = threading.Lock()
        deadline = [0.0]
        go = threading.Event()

        def worker(index: int) -> None:
            headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
            mine, bad, posted = [], [], 0
            with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as http:
                go.wait()
                i = index
                while time.monotonic() < deadline[0]:
                    body = prepared[i % len(prepared)]
                    i += args.concurrency
                    started = time.monotonic()
                    response = http.post("/sdk/v1/metrics", content=body)
                    mine.append(time.monotonic() - started)
                    if response.status_code == 202:
                        posted += 1
                    else:
                        bad.append(response.status_code)
            with lock:
                latencies.extend(mine)
                refused.extend(bad)
                sent[0] += posted

        assert server.process is not None
        cpu_before = cpu_seconds(server.process.pid)
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(args.concurrency)]
        for thread in threads:
            thread.start()
        started = time.monotonic()
        deadline[0] = started + args.seconds
        go.set()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
        cpu = cpu_seconds(server.process.pid) - cpu_before
        stored = _stored_count(server)
    latencies.sort()
    rows = sent[0] * args.batch
    return {
        "benchmark": "ingest",
        "db": args.db,
        "batch": args.batch,
        "concurrency": args.concurrency,
        "keys": args.keys,
        "seconds": round(elapsed, 2),
        "requests": len(latencies),
        "refused": len(refused),
        "refused_statuses": sorted(set(refused)),
        "rows": rows,
        "rows_per_second": round(rows / elapsed, 1),
        "requests_per_second": round(len(latencies) / elapsed, 1),
        "latency_ms": {
            name: round((percentile(latencies, pct) or 0) * 1000, 2)
            for name, pct in (("p50", 50), ("p95", 95), ("p99", 99), ("max", 100))
        },
        "server_cpu_seconds": round(cpu, 2),
        "stored_count": stored,
        "stored_count_expected": rows * 3,
        "stored_matches": stored == rows * 3,
        "machine": machine(),
        "date": now_iso(),
    }


def _stored_count(server: LockgateServer) -> int:
    url = server.database_url or f"sqlite:///{server.data_dir / 'lockgate.db'}"
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            total = conn.execute(text("SELECT COALESCE(SUM(count), 0) FROM metric_summaries"))
            return int(total.scalar_one())
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--batch", type=int, default=500, help="summary rows per request")
    parser.add_argument("--concurrency", type=int, default=4, help="client threads")
    parser.add_argument("--keys", type=int, default=20_000, help="distinct row keys")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    result = run(args)
    latency = result["latency_ms"]
    print(
        table(
            [
                "db",
                "batch",
                "conc",
                "rows/s",
                "req/s",
                "p50 ms",
                "p95 ms",
                "p99 ms",
                "refused",
                "stored ok",
            ],
            [
                [
                    result["db"],
                    str(args.batch),
                    str(args.concurrency),
                    fmt(result["rows_per_second"], 0),
                    fmt(result["requests_per_second"], 1),
                    fmt(latency["p50"]),
                    fmt(latency["p95"]),
                    fmt(latency["p99"]),
                    str(result["refused"]),
                    str(result["stored_matches"]),
                ]
            ],
        )
    )
    write_json(args.json, result)


if __name__ == "__main__":
    main()
