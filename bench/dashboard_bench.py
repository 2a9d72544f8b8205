"""The dashboard's overview: first render and steady renders of 500 behaviors by 4 environments.

Builds the app in process on a fresh SQLite database (or a fresh PostgreSQL database,
dropped afterwards), creates one project with four environments and `--flags` behaviors
whose configurations vary (off, fixed serves, percentage splits, rules, targets, kills),
with guardrails on some and pending change requests on others, logs a user in through the
login form and times ``GET /?project=bench`` through the whole ASGI stack (middleware,
routing, session check, the overview use-case, the template): the first request after the
app started (templates compiled then) and `--renders` more.

    ./bench/run dashboard [--flags N] [--renders N] [--db sqlite|postgres] [--json PATH]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fastapi.testclient import TestClient

from lockgate.api.app import build_services, create_app
from lockgate.control.base import Services, system_caller
from lockgate.control.configuration import flags as flag_use
from lockgate.control.configuration import projects as project_use
from lockgate.control.guardrails import definitions as guard_use
from lockgate.control.identity import users
from lockgate.settings import Settings
from serverlib import machine, now_iso, pg_database, write_json

ADMIN = system_caller("bench-admin")
ENVIRONMENTS = (("development", False), ("staging", False), ("canary", True), ("production", True))
PASSWORD = "a-long-bench-password"


def _config(i: int, env: str) -> dict[str, Any]:
    """A spread of configurations: every fifth off, splits, rules, targets, kills."""
    if i % 5 == 0:
        return {"on": False}
    config: dict[str, Any] = {"on": True, "default": {"variation": "observe"}}
    if i % 3 == 0:
        weight = (i * 997) % 100_000
        config["default"] = {
            "split": [
                {"variation": "full", "weight": weight},
                {"variation": "off", "weight": 100_000 - weight},
            ]
        }
    if i % 4 == 0:
        config["rules"] = [
            {
                "id": "internal",
                "clauses": [{"attribute": "email", "op": "ends_with", "values": ["@corp.test"]}],
                "serve": {"variation": "full"},
            }
        ]
    if i % 7 == 0:
        config["targets"] = [{"variation": "full", "values": [f"user-{i}", "user-x"]}]
    if i % 11 == 0 and env == "development":
        config["killed"] = True
    return config


def seed(services: Services, flags: int) -> None:
    project_use.create_project(services, ADMIN, "bench", "Bench")
    for env, protected in ENVIRONMENTS:
        project_use.create_environment(services, ADMIN, "bench", env, protected=protected)
    for i in range(flags):
        key = f"behavior-{i:04d}"
        tier = ("low", "medium", "high")[i % 3]
        definition = {"key": key, "kind": "mode", "risk_tier": tier, "owner": f"team-{i % 9}",
                      "tags": ["payments"] if i % 2 else ["search"]}  # fmt: skip
        flag_use.create_flag(services, ADMIN, "bench", definition, "seed")
        for env, _ in ENVIRONMENTS:
            flag_use.update_flag_config(
                services, ADMIN, "bench", key, env, _config(i, env), 1, "seed"
            )
        if i % 10 == 0:
            guard = {"metric": f"error-{i // 50}", "aggregation": "rate",
                     "min_sample": 1000, "window": "1h"}  # fmt: skip
            guard_use.put_guardrail(
                services, ADMIN, "bench", key, "production", "errors", guard, reason="seed"
            )


def run(args: argparse.Namespace, database_url: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as data:
        settings = Settings(data_dir=data, database_url=database_url, guardrail_cycle_seconds=0)
        services = build_services(settings)
        try:
            started = time.perf_counter()
            seed(services, args.flags)
            users.create_user(services, ADMIN, username="ops", password=PASSWORD, is_admin=True)
            seeded = time.perf_counter() - started
            app = create_app(settings, services)
            with TestClient(app, follow_redirects=False) as http:
                form = {"username": "ops", "password": PASSWORD, "next": "/"}
                assert http.post("/login", data=form).status_code == 303
                timings = []
                for _ in range(args.renders + 1):
                    t0 = time.perf_counter()
                    r = http.get("/?project=bench")
                    timings.append(time.perf_counter() - t0)
                    assert r.status_code == 200, r.text[:300]
                rows = r.text.count('<th scope="row">')
                size = len(r.content)
        finally:
            services.database.dispose()
    assert rows == args.flags, rows
    steady = timings[1:]
    return {
        "seed_seconds": round(seeded, 2),
        "rows": rows,
        "environments": len(ENVIRONMENTS),
        "html_bytes": size,
        "first_render_ms": round(timings[0] * 1000, 1),
        "render_ms": [round(t * 1000, 1) for t in steady],
        "render_p50_ms": round(statistics.median(steady) * 1000, 1),
        "render_max_ms": round(max(steady) * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flags", type=int, default=500)
    parser.add_argument("--renders", type=int, default=20)
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with ExitStack() as stack:
        url = stack.enter_context(pg_database("dashboard")) if args.db == "postgres" else ""
        measured = run(args, url)
    out = {"benchmark": "dashboard", "date": now_iso(), "machine": machine(), "db": args.db,
           **measured}  # fmt: skip
    print(f"overview of {measured['rows']} behaviors x {measured['environments']} environments "
          f"({args.db}, {measured['html_bytes']} bytes of HTML)")  # fmt: skip
    print(f"first render {measured['first_render_ms']} ms; then p50 "
          f"{measured['render_p50_ms']} ms, max {measured['render_max_ms']} ms "
          f"over {args.renders} renders")  # fmt: skip
    write_json(args.json, out)


if __name__ == "__main__":
    main()
