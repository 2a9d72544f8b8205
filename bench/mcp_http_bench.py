"""MCP tool calls over streamable HTTP (`/mcp`) beside the API calls they make.

Starts `lockgate serve` (a temporary data directory on SQLite, or a fresh PostgreSQL
database dropped afterwards), creates a project with one behavior and a service user with
an automation token, then times, one request at a time over one keep-alive connection:

- `GET /api/v1/projects/bench/flags/agent` and the MCP tool `get_behavior`;
- `POST …/environments/production/evaluate` and the MCP tool `evaluate_behavior`.

Each MCP call is one JSON-RPC `tools/call` POST to `/mcp` (stateless: no session, no
initialize needed) with the automation token, and is checked to be a result, not an
error. An MCP call authenticates its token, runs the tool, and the tool calls the same API
route in process: the difference between the two columns is what the MCP layer costs.
The calls of the two kinds alternate, so both see the same machine.

It also builds the application in a fresh process with `mcp_http` on and off (three times
each, alternating) and records each process's resident memory and the time to import and
build it: what the endpoint costs a server that never serves MCP.

    ./bench/run mcp-http [--calls N] [--db sqlite|postgres] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

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

PROJECT, ENV, BEHAVIOR = "bench", "production", "agent"
MCP_HEADERS = {"Accept": "application/json, text/event-stream"}


def setup(server: LockgateServer) -> str:
    """Project, environment, behavior, service user: the user's automation token."""
    with server.client() as http:
        api(http, "POST", "/api/v1/projects", (201,), json={"key": PROJECT})
        api(http, "POST", f"/api/v1/projects/{PROJECT}/environments", (201,), json={"key": ENV})
        flag = {"key": BEHAVIOR, "kind": "mode", "risk_tier": "medium", "reason": "bench"}
        api(http, "POST", f"/api/v1/projects/{PROJECT}/flags", (201,), json=flag)
        user = {"username": "agent", "kind": "service", "reason": "bench"}
        api(http, "POST", "/api/v1/users", (201,), json=user)
        member = f"/api/v1/projects/{PROJECT}/members/agent"
        api(http, "PUT", member, (200,), json={"role": "editor"})
        token = {"name": "agent", "user": "agent", "kind": "automation"}
        created = api(http, "POST", "/api/v1/tokens", (201,), json=token)
        return str(created.json()["token"])


def _tool_call(http: httpx.Client, n: int, name: str, arguments: dict[str, Any]) -> None:
    body = {
        "jsonrpc": "2.0",
        "id": n,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments},
    }
    response = http.post("/mcp", json=body, headers=MCP_HEADERS)
    answer = response.json()
    if response.status_code != 200 or answer.get("result", {}).get("isError", True):
        raise RuntimeError(f"{name}: {response.status_code} {response.text[:300]}")


def _api_call(http: httpx.Client, method: str, path: str, body: Any = None) -> None:
    response = http.request(method, path, json=body)
    if response.status_code != 200:
        raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:300]}")


def _timed(action: Callable[[], None]) -> float:
    started = time.perf_counter()
    action()
    return (time.perf_counter() - started) * 1000


def summary(values: list[float]) -> dict[str, float | None]:
    ordered = sorted(values)
    return {
        "p50_ms": percentile(ordered, 50),
        "p90_ms": percentile(ordered, 90),
        "p99_ms": percentile(ordered, 99),
        "max_ms": ordered[-1] if ordered else None,
    }


def measure(server: LockgateServer, token: str, calls: int) -> dict[str, Any]:
    flag_path = f"/api/v1/projects/{PROJECT}/flags/{BEHAVIOR}"
    evaluate_path = f"/api/v1/projects/{PROJECT}/environments/{ENV}/evaluate"
    context = {"key": "user-1", "plan": "pro"}
    kinds: dict[str, tuple[Callable[[httpx.Client, int], None], ...]] = {
        "read a behavior": (
            lambda http, n: _api_call(http, "GET", flag_path),
            lambda http, n: _tool_call(
                http, n, "get_behavior", {"project": PROJECT, "behavior": BEHAVIOR}
            ),
        ),
        "evaluate a context": (
            lambda http, n: _api_call(
                http, "POST", evaluate_path, {"flag": BEHAVIOR, "context": context}
            ),
            lambda http, n: _tool_call(
                http,
                n,
                "evaluate_behavior",
                {"project": PROJECT, "environment": ENV, "behavior": BEHAVIOR, "context": context},
            ),
        ),
    }
    headers = {"Authorization": f"Bearer {token}"}
    results: dict[str, Any] = {}
    assert server.process is not None
    cpu_before = cpu_seconds(server.process.pid)
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as http:
        for name, (direct, tool) in kinds.items():
            for n in range(20):  # warm-up: connection, caches, first imports
                direct(http, n)
                tool(http, n)
            api_ms: list[float] = []
            mcp_ms: list[float] = []
            for n in range(calls):
                api_ms.append(_timed(lambda: direct(http, n)))  # noqa: B023
                mcp_ms.append(_timed(lambda: tool(http, n)))  # noqa: B023
            results[name] = {"api": summary(api_ms), "mcp": summary(mcp_ms), "calls": calls}
    results["server_cpu_seconds"] = cpu_seconds(server.process.pid) - cpu_before
    return results


FOOTPRINT = """
import sys, tempfile, time
started = time.perf_counter()
from lockgate.api.app import create_app
from lockgate.settings import Settings
create_app(Settings(data_dir=tempfile.mkdtemp(), mcp_http=sys.argv[1] == "on"))
took = time.perf_counter() - started
rss = int(open("/proc/self/status").read().split("VmRSS:")[1].split()[0]) / 1024
print(f"{rss} {took}")
"""


def footprint(rounds: int = 3) -> dict[str, Any]:
    """RSS (MiB) and import-and-build seconds of a fresh process, MCP on and off."""
    found: dict[str, dict[str, list[float]]] = {
        state: {"rss_mib": [], "build_s": []} for state in ("on", "off")
    }
    for _ in range(rounds):
        for state in ("on", "off"):
            done = subprocess.run(
                [sys.executable, "-c", FOOTPRINT, state],
                capture_output=True,
                text=True,
                timeout=120,
                check=True,
            )
            rss, took = (float(x) for x in done.stdout.split())
            found[state]["rss_mib"].append(round(rss, 1))
            found[state]["build_s"].append(round(took, 3))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300, help="timed calls of each kind")
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    with lockgate_server(args.db) as server:
        token = setup(server)
        results = measure(server, token, args.calls)
    results["footprint"] = footprint()
    rows = []
    for name in ("read a behavior", "evaluate a context"):
        api_ms, mcp_ms = results[name]["api"], results[name]["mcp"]
        for label, values in (("API", api_ms), ("MCP tool", mcp_ms)):
            rows.append(
                [
                    f"{name}: {label}",
                    fmt(values["p50_ms"], 2),
                    fmt(values["p90_ms"], 2),
                    fmt(values["p99_ms"], 2),
                    fmt(values["max_ms"], 2),
                ]
            )
    print(f"MCP over HTTP vs the API, {args.calls} calls each, one at a time, {args.db}")
    print(table(["call", "p50 ms", "p90 ms", "p99 ms", "max ms"], rows))
    write_json(
        args.json,
        {
            "benchmark": "mcp-http",
            "date": now_iso(),
            "machine": machine(),
            "db": args.db,
            "results": results,
            "command": " ".join(["./bench/run", "mcp-http", *sys.argv[1:]]),
        },
    )
    print(json.dumps({k: results[k] for k in ("server_cpu_seconds", "footprint")}))


if __name__ == "__main__":
    main()
