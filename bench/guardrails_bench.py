"""The guardrail cycle: 500 guardrails evaluated per cycle against a seeded database.

Builds the services in process on a fresh SQLite database (or a fresh PostgreSQL database,
dropped afterwards), creates one project and environment, `--flags` behaviors each with
`--per-flag` guardrails (an error-rate regression, a mean-latency regression, …) and a
staged rollout plan at its 5 % stage, then seeds an hour of minute summaries per behavior:
two variations, each guardrail's metric and the exposure rows (rows written directly, as
the ingestion path stores them). Then it times `--cycles` cycles of
``lockgate.control.guardrails.cycle.run_cycle`` in the steady state (every guardrail
evaluated and stored, every plan checked; nothing breaches, nothing advances: the plans'
hold has not passed). As a baseline measured in the same run, it times the cycle's read
of the summaries alone (one aggregate query for the hour).

    ./bench/run guardrails [--flags N] [--per-flag N] [--minutes N] [--cycles N]
                           [--db sqlite|postgres] [--json PATH]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sqlalchemy import insert, select

from lockgate.api.app import build_services
from lockgate.control.base import Services, system_caller
from lockgate.control.configuration import flags as flag_use
from lockgate.control.configuration import projects as project_use
from lockgate.control.guardrails import cycle
from lockgate.control.guardrails import definitions as guard_use
from lockgate.settings import Settings
from lockgate.store.tables import environments, metric_summaries
from serverlib import machine, now_iso, pg_database, write_json

ADMIN = system_caller("bench-admin")
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
METRICS = ("error", "latency_ms", "timeout", "retry", "cost")


def seed(services: Services, flags: int, per_flag: int, minutes: int) -> int:
    services.clock = lambda: NOW
    project_use.create_project(services, ADMIN, "bench", "Bench")
    project_use.create_environment(services, ADMIN, "bench", "prod")
    plan = {"variation": "full", "stable": "off",
            "stages": [{"percent": 5, "min_hold": "1d"}, {"percent": 100}]}  # fmt: skip
    for i in range(flags):
        key = f"behavior-{i}"
        flag_use.create_flag(services, ADMIN, "bench", {"key": key, "kind": "mode"})
        for j in range(per_flag):
            metric = METRICS[j % len(METRICS)]
            name = f"{metric}-{j}-{i // 50}"  # at most 100 behaviors per metric (the snapshot)
            body = {"metric": name, "aggregation": "mean" if j % 2 else "rate",
                    "min_sample": 1000, "window": "1h"}  # fmt: skip
            guard_use.put_guardrail(services, ADMIN, "bench", key, "prod", f"g{j}", body)
        guard_use.put_plan(services, ADMIN, "bench", key, "prod", plan)
    cycle.run_cycle(services)  # every plan to its first stage
    with services.view() as conn:
        env = conn.execute(select(environments.c.id)).scalar_one()
    rng = random.Random(7)
    end = int(NOW.timestamp()) // 60 * 60
    rows: list[dict[str, Any]] = []
    written = 0
    with services.database.write() as conn:
        for i in range(flags):
            for minute in range(minutes):
                bucket = end - minute * 60
                for variation, exposed in (("full", 50), ("off", 950)):
                    base = {"environment_id": env, "flag": f"behavior-{i}",
                            "variation": variation, "cohort": "", "resolution": 60,
                            "bucket": bucket}  # fmt: skip
                    rows.append(base | {"metric": "$exposure", "count": 0, "sum": 0.0,
                                        "sum_sq": 0.0, "exposures": exposed})  # fmt: skip
                    for j in range(per_flag):
                        n = rng.randint(exposed // 60, exposed // 40)
                        value = 120.0 if j % 2 else 1.0
                        metric = f"{METRICS[j % len(METRICS)]}-{j}-{i // 50}"
                        rows.append(
                            base | {"metric": metric, "count": n, "sum": n * value,
                                    "sum_sq": n * value * value, "exposures": 0}
                        )  # fmt: skip
                if len(rows) >= 5000:
                    conn.execute(insert(metric_summaries), rows)
                    written += len(rows)
                    rows = []
        if rows:
            conn.execute(insert(metric_summaries), rows)
            written += len(rows)
    return written


def read_only(services: Services, wanted: set[tuple[str, str]]) -> float:
    """The cycle's summary read alone: the totals of the hour, summed by the database."""
    started = time.perf_counter()
    with services.view() as conn:
        env = conn.execute(select(environments.c.id)).scalar_one()
        end = int(NOW.timestamp())
        cycle._summaries(conn, env, end - 3600, end + 1, wanted)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--flags", type=int, default=250)
    parser.add_argument("--per-flag", type=int, default=2)
    parser.add_argument("--minutes", type=int, default=60)
    parser.add_argument("--cycles", type=int, default=10)
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with ExitStack() as stack:
        url = stack.enter_context(pg_database("lockgate_bench")) if args.db == "postgres" else ""
        data = stack.enter_context(tempfile.TemporaryDirectory(prefix="lockgate-bench-"))
        services = build_services(Settings(data_dir=data, database_url=url))
        stack.callback(services.database.dispose)
        started = time.perf_counter()
        rows = seed(services, args.flags, args.per_flag, args.minutes)
        seeded = time.perf_counter() - started
        with services.view() as conn:
            pairs = conn.execute(select(metric_summaries.c.flag, metric_summaries.c.metric)).all()
        wanted = {(f, m) for f, m in pairs if m != "$exposure"}
        timings, reads, results = [], [], []
        for _ in range(args.cycles):
            reads.append(read_only(services, wanted))
            started = time.perf_counter()
            result = cycle.run_cycle(services)
            timings.append(time.perf_counter() - started)
            results.append(result)
    last = results[-1]
    assert last.evaluated == args.flags * args.per_flag, last
    assert last.acted == 0, last
    out = {
        "benchmark": "guardrails",
        "date": now_iso(),
        "machine": machine(),
        "db": args.db,
        "guardrails": last.evaluated,
        "plans": args.flags,
        "summary_rows": rows,
        "states": last.states,
        "seed_seconds": round(seeded, 2),
        "cycle_seconds": [round(t, 4) for t in timings],
        "cycle_p50": round(statistics.median(timings), 4),
        "cycle_max": round(max(timings), 4),
        "summaries_read_p50": round(statistics.median(reads), 4),
    }
    print(f"{out['guardrails']} guardrails, {args.flags} plans, {rows} summary rows ({args.db})")
    print(f"cycle: p50 {out['cycle_p50']:.3f} s, max {out['cycle_max']:.3f} s "
          f"over {args.cycles} cycles; states {last.states}")  # fmt: skip
    print(f"baseline, the cycle's summary read alone: p50 {out['summaries_read_p50']:.3f} s")
    write_json(args.json, out)


if __name__ == "__main__":
    main()
