"""The dashboard's behavior page with its charts per variation, on 30 days of counts.

Builds the app in process on a fresh SQLite database (or a fresh PostgreSQL database,
dropped afterwards): one project with four environments and one behavior split three ways
in production, with the evaluation counts `--sdks` SDK instances report once a minute for
30 days (one row per instance, minute and variation: 518,400 rows with the defaults) and
two guardrails with 30 days of history (one row per 15-minute slot, as the cycle keeps
it). Logs a user in and times ``GET /behaviors/bench/checkout?environment=production&
range=R`` for each range through the whole ASGI stack.

    .venv/bin/python bench/behavior_page_bench.py [--sdks N] [--renders N]
        [--db sqlite|postgres] [--json PATH]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fastapi.testclient import TestClient
from sqlalchemy import insert, select

from lockgate.api.app import build_services, create_app
from lockgate.control.base import Services, iso, system_caller
from lockgate.control.configuration import flags as flag_use
from lockgate.control.configuration import projects as project_use
from lockgate.control.evidence.variations import RANGES
from lockgate.control.guardrails import definitions as guard_use
from lockgate.control.identity import users
from lockgate.settings import Settings
from lockgate.store.counts import add_hours
from lockgate.store.tables import environments, evaluation_counts, guardrail_results, guardrails
from serverlib import machine, now_iso, pg_database, write_json

ADMIN = system_caller("bench-admin")
ENVIRONMENTS = (("development", False), ("staging", False), ("canary", True), ("production", True))
PASSWORD = "a-long-bench-password"
DAYS = 30
SHARES = {"off": 0.5, "observe": 0.3, "full": 0.2}
PAGE = "/behaviors/bench/checkout?environment=production&range={}"


def _stamp(seconds: int) -> str:
    return iso(datetime.fromtimestamp(seconds, UTC))


def _counts(env_id: int, sdks: int, now: int) -> int:
    """One row per SDK instance, minute and variation over the last 30 days."""
    first = now // 60 * 60 - DAYS * 86400
    written = 0
    batch: list[dict[str, Any]] = []
    for minute in range(first, now, 60):
        at = _stamp(minute)
        end = _stamp(minute + 59)
        for sdk in range(sdks):
            for variation, share in SHARES.items():
                batch.append({"environment_id": env_id, "flag": "checkout",
                              "variation": variation, "reason": "SPLIT",
                              "window_start": at, "window_end": end,
                              "count": int(600 * share) + sdk, "sdk": f"python/{sdk}",
                              "received_at": end})  # fmt: skip
        if len(batch) >= 20_000:
            written += _flush(batch)
    return written + _flush(batch)


def _flush(batch: list[dict[str, Any]]) -> int:
    """Stored as ``POST /sdk/v1/events`` stores them: the rows, and their hours."""
    n = len(batch)
    if n:
        with SERVICES[0].database.write() as conn:
            conn.execute(insert(evaluation_counts), batch)
            add_hours(
                conn,
                batch[0]["environment_id"],
                ((r["flag"], r["variation"], r["reason"], r["window_start"], r["count"])
                 for r in batch),
            )  # fmt: skip
        batch.clear()
    return n


SERVICES: list[Services] = []


def _history(services: Services, now: int) -> int:
    """30 days of 15-minute slots for each guardrail of the behavior."""
    with services.view() as conn:
        ids = [r.id for r in conn.execute(select(guardrails.c.id)).all()]
    rows = []
    first = now // 900 * 900 - DAYS * 86400
    for gid in ids:
        for i, slot in enumerate(range(first, now, 900)):
            drift = (i % 96) / 96 * 0.004
            rows.append({"guardrail_id": gid, "slot": slot, "evaluated_at": _stamp(slot + 60),
                         "state": "healthy", "estimate": -0.002 + drift, "low": -0.006 + drift,
                         "high": 0.002 + drift, "threshold": 0.1, "boundary": 0.0, "scale": 1.1,
                         "arms": {"off": {"n": 40_000, "value": 0.02, "role": "control"},
                                  "full": {"n": 16_000, "value": 0.02 + drift,
                                           "role": "treatment"}}})  # fmt: skip
    with services.database.write() as conn:
        conn.execute(insert(guardrail_results), rows)
    return len(rows)


def seed(services: Services, sdks: int) -> dict[str, int]:
    project_use.create_project(services, ADMIN, "bench", "Bench")
    for env, protected in ENVIRONMENTS:
        project_use.create_environment(services, ADMIN, "bench", env, protected=protected)
    definition = {"key": "checkout", "kind": "mode", "risk_tier": "low", "owner": "payments"}
    flag_use.create_flag(services, ADMIN, "bench", definition, "seed")
    split = [{"variation": v, "weight": int(share * 100_000)} for v, share in SHARES.items()]
    for env, _ in ENVIRONMENTS:
        config = {"on": True, "default": {"split": split}}
        flag_use.update_flag_config(services, ADMIN, "bench", "checkout", env, config, 1, "seed")
    for key, metric in (("errors", "error"), ("latency", "slow")):
        guard = {"metric": metric, "min_sample": 1000, "window": "1h", "threshold": 0.1}
        guard_use.put_guardrail(
            services, ADMIN, "bench", "checkout", "production", key, guard, reason="seed"
        )
    with services.view() as conn:
        env_id = conn.execute(
            select(environments.c.id).where(environments.c.key == "production")
        ).scalar_one()
    now = int(services.clock().timestamp())
    return {"count_rows": _counts(env_id, sdks, now), "history_rows": _history(services, now)}


def run(args: argparse.Namespace, database_url: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as data:
        settings = Settings(data_dir=data, database_url=database_url, guardrail_cycle_seconds=0)
        services = build_services(settings)
        SERVICES.append(services)
        try:
            started = time.perf_counter()
            seeded = seed(services, args.sdks)
            users.create_user(services, ADMIN, username="ops", password=PASSWORD, is_admin=True)
            seconds = time.perf_counter() - started
            app = create_app(settings, services)
            timings: dict[str, list[float]] = {}
            with TestClient(app, follow_redirects=False) as http:
                form = {"username": "ops", "password": PASSWORD, "next": "/"}
                assert http.post("/login", data=form).status_code == 303
                for name in RANGES:
                    timings[name] = []
                    for _ in range(args.renders + 1):
                        t0 = time.perf_counter()
                        r = http.get(PAGE.format(name))
                        timings[name].append(time.perf_counter() - t0)
                        assert r.status_code == 200, r.text[:300]
                        assert r.text.count('data-kind="metric"') == 2
        finally:
            services.database.dispose()
    ranges = {}
    for name, times in timings.items():
        steady = times[1:]
        ranges[name] = {
            "first_ms": round(times[0] * 1000, 1),
            "p50_ms": round(statistics.median(steady) * 1000, 1),
            "max_ms": round(max(steady) * 1000, 1),
        }
    return {"seed_seconds": round(seconds, 2), **seeded, "ranges": ranges}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sdks", type=int, default=4)
    parser.add_argument("--renders", type=int, default=10)
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with ExitStack() as stack:
        url = stack.enter_context(pg_database("behavior")) if args.db == "postgres" else ""
        measured = run(args, url)
    out = {"benchmark": "behavior-page", "date": now_iso(), "machine": machine(), "db": args.db,
           **measured}  # fmt: skip
    print(f"behavior page ({args.db}): {measured['count_rows']} count rows over {DAYS} days, "
          f"{measured['history_rows']} guardrail history rows")  # fmt: skip
    for name, r in measured["ranges"].items():
        print(f"  range {name}: first {r['first_ms']} ms; then p50 {r['p50_ms']} ms, "
              f"max {r['max_ms']} ms over {args.renders} renders")  # fmt: skip
    write_json(args.json, out)


if __name__ == "__main__":
    main()
