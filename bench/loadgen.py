"""Fallback HTTP load generator for `./bench/run ruleset` when `wrk` is not installed.

One separate process, asyncio + httpx, `--concurrency` connections each sending requests
back to back for `--seconds`. Prints one line `BENCH_JSON {...}` in the same shape as
bench/wrk/load.lua. Much slower per request than wrk: on a 2-core machine it can be the
bottleneck, which the ruleset report says when it was used.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx


async def _worker(  # noqa: PLR0917
    client: httpx.AsyncClient,
    spec: dict[str, Any],
    bodies: list[bytes],
    offset: int,
    deadline: float,
    latencies: list[float],
    statuses: Counter[str],
    errors: Counter[str],
) -> int:
    sent = 0
    headers = {"Authorization": spec["auth"], "Accept": "application/json"}
    if spec.get("inm"):
        headers["If-None-Match"] = spec["inm"]
    if bodies:
        headers["Content-Type"] = "application/json"
    size = 0
    while time.monotonic() < deadline:
        body = bodies[(offset + sent) % len(bodies)] if bodies else None
        t0 = time.perf_counter()
        try:
            response = await client.request(
                spec["method"], spec["url"], content=body, headers=headers
            )
        except httpx.TimeoutException:
            errors["timeout"] += 1
            continue
        except httpx.HTTPError:
            errors["read"] += 1
            continue
        latencies.append((time.perf_counter() - t0) * 1e6)
        statuses[str(response.status_code)] += 1
        size += len(response.content)
        sent += 1
    return size


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    bodies = []
    if spec.get("bodies"):
        bodies = [line.encode() for line in Path(spec["bodies"]).read_text().splitlines() if line]
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    limits = httpx.Limits(max_connections=spec["concurrency"], max_keepalive_connections=None)
    headers = {"Accept-Encoding": "identity"}
    async with httpx.AsyncClient(limits=limits, timeout=10, headers=headers) as client:
        start = time.monotonic()
        deadline = start + spec["seconds"]
        sizes = await asyncio.gather(
            *(
                _worker(client, spec, bodies, i * 7, deadline, latencies, statuses, errors)
                for i in range(spec["concurrency"])
            )
        )
        duration = time.monotonic() - start
    latencies.sort()

    def pct(p: float) -> int:
        if not latencies:
            return 0
        return int(latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))])

    return {
        "requests": len(latencies),
        "duration_us": int(duration * 1e6),
        "bytes": sum(sizes),
        "errors": {
            "connect": 0,
            "read": errors["read"],
            "write": 0,
            "status": sum(v for k, v in statuses.items() if not k.startswith(("2", "3"))),
            "timeout": errors["timeout"],
        },
        "latency_us": {
            "p50": pct(50),
            "p90": pct(90),
            "p95": pct(95),
            "p99": pct(99),
            "max": int(latencies[-1]) if latencies else 0,
            "mean": sum(latencies) / len(latencies) if latencies else 0.0,
        },
        "statuses": dict(statuses),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("spec", help="JSON: url, method, auth, inm, bodies, concurrency, seconds")
    spec = json.loads(parser.parse_args().spec)
    if not spec["url"].startswith(("http://127.0.0.1:", "http://localhost:")):
        parser.error("loopback targets only")
    result = asyncio.run(run(spec))
    print("BENCH_JSON " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
