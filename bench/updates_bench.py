"""Flag-configuration update throughput through the API, on SQLite and PostgreSQL.

For each backend: start `lockgate serve` (temporary data directory; a fresh PostgreSQL
database, dropped afterwards), create a project, an environment and `--flags` flags, then
for `--seconds` seconds let `--concurrency` client threads PATCH flag configurations with
If-Match (versions tracked client-side and shared between threads; a 409 refreshes the
version with a GET and is counted apart). Afterwards check that the audit log holds exactly
one `flag:configured` entry per successful update (through GET /api/v1/audit and by a row
count in the database) and that `lockgate audit verify` reports the chain intact.
Run it through `./bench/run updates` (see docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from server_workload import flags as bench_flags
from server_workload import lockgate_config, split
from serverlib import (
    PYSPY,
    LockgateServer,
    api,
    cpu_seconds,
    etag_version,
    fmt,
    lockgate_server,
    machine,
    now_iso,
    percentile,
    print_profile,
    start_pyspy,
    summarize_profile,
    table,
    write_json,
)

PROJECT, ENV = "bench", "production"


@dataclass
class Worker:
    ok_ms: list[float] = field(default_factory=list)
    conflict_ms: list[float] = field(default_factory=list)
    successes: list[tuple[str, int]] = field(default_factory=list)
    refreshes: int = 0
    errors: Counter[str] = field(default_factory=Counter)


class Versions:
    """The last known version of each flag's configuration, shared by the client threads."""

    def __init__(self, initial: dict[str, int]) -> None:
        self._versions = dict(initial)
        self._lock = threading.Lock()

    def get(self, key: str) -> int:
        with self._lock:
            return self._versions[key]

    def saw(self, key: str, version: int) -> None:
        with self._lock:
            self._versions[key] = max(self._versions[key], version)


def _weight(version: int) -> int:
    """A different observe weight for every version, so every PATCH is a real change."""
    return (version * 7_919) % 99_999 + 1


def setup(server: LockgateServer, flag_count: int) -> dict[str, int]:
    with server.client() as http:
        api(http, "POST", "/api/v1/projects", (201,), json={"key": PROJECT})
        api(http, "POST", f"/api/v1/projects/{PROJECT}/environments", (201,), json={"key": ENV})
        versions = {}
        for flag in bench_flags(flag_count):
            api(
                http,
                "POST",
                f"/api/v1/projects/{PROJECT}/flags",
                (201,),
                json={"key": flag.key, "kind": "mode"},
            )
            path = f"/api/v1/projects/{PROJECT}/flags/{flag.key}/environments/{ENV}"
            response = api(
                http, "PATCH", path, (200,), json=lockgate_config(flag), headers={"If-Match": '"1"'}
            )
            versions[flag.key] = etag_version(response)
    return versions


def audit_head(server: LockgateServer) -> int:
    with server.client() as http:
        items = api(http, "GET", "/api/v1/audit", (200,), params={"limit": 1}).json()["items"]
    return int(items[0]["seq"]) if items else 0


def run_load(
    server: LockgateServer, versions: Versions, keys: list[str], seconds: float, concurrency: int
) -> tuple[list[Worker], float]:
    workers = [Worker() for _ in range(concurrency)]
    start_gate = threading.Barrier(concurrency + 1)
    deadline = [0.0]

    def work(index: int) -> None:
        rng = random.Random(index)
        me = workers[index]
        http = LightClient(server)
        try:
            start_gate.wait()
            while time.monotonic() < deadline[0]:
                key = rng.choice(keys)
                path = f"/api/v1/projects/{PROJECT}/flags/{key}/environments/{ENV}"
                version = versions.get(key)
                body = {"default": split(_weight(version + 1))}
                t0 = time.perf_counter()
                try:
                    status, etag = http.request("PATCH", path, body, version)
                except OSError as exc:
                    me.errors[type(exc).__name__] += 1
                    http.reconnect()
                    continue
                elapsed_ms = (time.perf_counter() - t0) * 1000
                if status == 200:
                    me.ok_ms.append(elapsed_ms)
                    me.successes.append((key, etag))
                    versions.saw(key, etag)
                elif status == 409:
                    me.conflict_ms.append(elapsed_ms)
                    me.refreshes += 1
                    status, etag = http.request("GET", path)
                    if status == 200:
                        versions.saw(key, etag)
                else:
                    me.errors[f"HTTP {status}"] += 1
        finally:
            http.close()

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    deadline[0] = time.monotonic() + seconds
    start = time.monotonic()
    start_gate.wait()
    for thread in threads:
        thread.join(seconds + 120)
    return workers, time.monotonic() - start


class LightClient:
    """One keep-alive HTTP/1.1 connection from the standard library.

    The load generator shares the machine (two cores) with the server and its database, so
    it is kept light: http.client costs a fraction of a full-featured client's CPU per
    request, which would otherwise be taken from the server being measured.
    """

    def __init__(self, server: LockgateServer) -> None:
        url = urlsplit(server.base_url)
        self._address = (url.hostname or "127.0.0.1", url.port or 80)
        self._auth = f"Bearer {server.token}"
        self._conn = http.client.HTTPConnection(*self._address, timeout=30)

    def request(
        self, method: str, path: str, body: Any = None, version: int | None = None
    ) -> tuple[int, int]:
        """(status, the ETag's version or 0)."""
        headers = {"Authorization": self._auth, "Accept-Encoding": "identity"}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if version is not None:
            headers["If-Match"] = f'"{version}"'
        self._conn.request(method, path, body=payload, headers=headers)
        response = self._conn.getresponse()
        response.read()
        etag = response.getheader("ETag") or ""
        return response.status, int(etag.strip('"')) if etag.strip('"').isdigit() else 0

    def reconnect(self) -> None:
        self._conn.close()
        self._conn = http.client.HTTPConnection(*self._address, timeout=30)

    def close(self) -> None:
        self._conn.close()


def audit_entries_since(server: LockgateServer, after_seq: int) -> list[dict[str, Any]]:
    """Every audit entry after `after_seq`, oldest first, through the API."""
    entries: list[dict[str, Any]] = []
    cursor = None
    with server.client() as http:
        while True:
            params: dict[str, Any] = {"after_seq": after_seq, "order": "asc", "limit": 500}
            if cursor:
                params["cursor"] = cursor
            page = api(http, "GET", "/api/v1/audit", (200,), params=params).json()
            entries += page["items"]
            cursor = page.get("next_cursor")
            if not cursor or not page["items"]:
                return entries


def db_count(server: LockgateServer, after_seq: int) -> int:
    """`flag:configured` rows after `after_seq`, counted in the database itself."""
    query = "SELECT count(*) FROM audit_log WHERE seq > %s AND action = 'flag:configured'"
    if server.database_url:
        import psycopg

        with psycopg.connect(server.database_url) as conn:
            row = conn.execute(query, (after_seq,)).fetchone()
    else:
        import sqlite3

        with sqlite3.connect(server.data_dir / "lockgate.db") as conn:
            row = conn.execute(query.replace("%s", "?"), (after_seq,)).fetchone()
    assert row is not None
    return int(row[0])


def check_audit(
    entries: list[dict[str, Any]], successes: list[tuple[str, int]], rows: int
) -> dict[str, Any]:
    configured = [e for e in entries if e["action"] == "flag:configured"]
    logged = Counter((e["object_key"], e["after"]["version"]) for e in configured)
    wanted = Counter(successes)
    problems = []
    if len(configured) != len(successes):
        problems.append(f"{len(configured)} flag:configured entries for {len(successes)} updates")
    if rows != len(successes):
        problems.append(f"{rows} flag:configured rows in the database for {len(successes)}")
    if missing := wanted - logged:
        problems.append(
            f"{sum(missing.values())} updates without an entry, e.g. {next(iter(missing))}"
        )
    if extra := logged - wanted:
        problems.append(
            f"{sum(extra.values())} entries without an update, e.g. {next(iter(extra))}"
        )
    others = Counter(e["action"] for e in entries if e["action"] != "flag:configured")
    return {
        "ok": not problems,
        "problems": problems,
        "entries_api": len(configured),
        "rows_db": rows,
        "other_entries": dict(others),
    }


def bench_backend(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    print(f"[{backend}] starting lockgate serve...", file=sys.stderr, flush=True)
    with lockgate_server(backend, keep=args.keep) as server:
        assert server.process is not None
        initial = setup(server, args.flags)
        head = audit_head(server)
        versions = Versions(initial)
        print(
            f"[{backend}] {args.flags} flags ready; {args.concurrency} clients for "
            f"{args.seconds:g} s...",
            file=sys.stderr,
            flush=True,
        )
        cpu0 = cpu_seconds(server.process.pid)
        client0 = time.process_time()
        workers, elapsed = run_load(server, versions, list(initial), args.seconds, args.concurrency)
        server_cpu = cpu_seconds(server.process.pid) - cpu0
        client_cpu = time.process_time() - client0
        profile: dict[str, Any] | None = None
        extra: list[Worker] = []
        if args.profile is not None:  # a second, untimed load pass under py-spy
            raw = args.profile / f"updates-{backend}.txt"
            print(f"[{backend}] profiling a second pass...", file=sys.stderr, flush=True)
            spy = start_pyspy(server.process.pid, args.seconds, raw)
            if spy is None:
                profile = {"error": f"py-spy not installed at {PYSPY}"}
            else:
                time.sleep(0.5)
                extra, _ = run_load(server, versions, list(initial), args.seconds, args.concurrency)
                spy.wait(args.seconds + 30)
                profile = summarize_profile(raw) | {"raw": str(raw)}
        ok_ms = sorted(x for w in workers for x in w.ok_ms)
        conflict_ms = sorted(x for w in workers for x in w.conflict_ms)
        successes = [s for w in workers for s in w.successes]
        errors: Counter[str] = sum((w.errors for w in workers), Counter())
        print(f"[{backend}] checking the audit log...", file=sys.stderr, flush=True)
        everything = successes + [s for w in extra for s in w.successes]
        audit = check_audit(audit_entries_since(server, head), everything, db_count(server, head))
        server.stop()
        log_text = server.process.log_path.read_text(errors="replace") if errors else ""
        verify = server.audit_verify()
    attempts = len(ok_ms) + len(conflict_ms) + sum(errors.values())
    return {
        "backend": backend,
        "seconds": elapsed,
        "concurrency": args.concurrency,
        "flags": args.flags,
        "updates": len(ok_ms),
        "updates_per_s": len(ok_ms) / elapsed,
        "conflicts_409": len(conflict_ms),
        "conflict_share": len(conflict_ms) / attempts if attempts else 0.0,
        "errors": dict(errors),
        "latency_ms": {
            "p50": percentile(ok_ms, 50),
            "p95": percentile(ok_ms, 95),
            "p99": percentile(ok_ms, 99),
            "max": ok_ms[-1] if ok_ms else None,
        },
        "conflict_latency_ms": {
            "p50": percentile(conflict_ms, 50),
            "p99": percentile(conflict_ms, 99),
        },
        "server_cpu_cores": server_cpu / elapsed,
        "server_cpu_ms_per_update": server_cpu * 1000 / len(ok_ms) if ok_ms else None,
        "load_generator_cpu_cores": client_cpu / elapsed,
        "machine_load_average": list(os.getloadavg()),
        "audit": audit,
        "audit_verify": verify,
        "server_exceptions": dict(_exceptions(log_text)),
        "server_log_tail": "\n".join(log_text.splitlines()[-80:]),
        "failed_requests": sum(errors.values()),
        "profile": profile,
    }


def _exceptions(log: str) -> Counter[str]:
    """The exception lines (`module.Error: message`) of a server log excerpt."""
    found: Counter[str] = Counter()
    for line in log.splitlines():
        head = line.split(":", 1)[0]
        if head.endswith(("Error", "Exception", "Violation")) and " " not in head:
            found[line.strip()] += 1
    return found


def print_report(results: dict[str, Any]) -> None:
    runs = results["runs"]
    first = runs[0]
    print()
    print(
        f"PATCH flag configuration with If-Match: {first['concurrency']} clients, "
        f"{first['flags']} flags, {first['seconds']:.0f} s per backend "
        "(latency of successful updates, ms)."
    )
    print()
    header = (
        "backend",
        "updates",
        "updates/s",
        "409s",
        "failed",
        "p50",
        "p95",
        "p99",
        "max",
        "server CPU",
        "CPU ms/update",
        "load gen CPU",
        "audit 1:1",
        "chain",
    )
    rows = []
    for run in runs:
        lat = run["latency_ms"]
        rows.append(
            (
                run["backend"],
                f"{run['updates']:,}",
                fmt(run["updates_per_s"]),
                f"{run['conflicts_409']:,} ({run['conflict_share']:.1%})",
                f"{run['failed_requests']:,}",
                fmt(lat["p50"]),
                fmt(lat["p95"]),
                fmt(lat["p99"]),
                fmt(lat["max"]),
                f"{run['server_cpu_cores']:.2f} cores",
                fmt(run["server_cpu_ms_per_update"]),
                f"{run['load_generator_cpu_cores']:.2f} cores",
                "yes" if run["audit"]["ok"] else "NO",
                "intact" if run["audit_verify"]["intact"] else "BROKEN",
            )
        )
    print(table(header, rows))
    for run in runs:
        for problem in run["audit"]["problems"]:
            print(f"{run['backend']}: AUDIT MISMATCH - {problem}")
        if not run["audit_verify"]["intact"]:
            verify = run["audit_verify"]
            detail = verify.get("report") or verify.get("stdout") or verify.get("stderr")
            print(f"{run['backend']}: audit verify exit {verify['exit_code']}: {detail}")
        if run["errors"]:
            print(f"{run['backend']}: failed requests {run['errors']}")
            for line, count in Counter(run["server_exceptions"]).most_common(2):
                print(f"  server log: {count} x {line[:300]}")
    for run in runs:
        if profile := run.get("profile"):
            if "error" in profile:
                print(f"{run['backend']} profile: {profile['error']}")
            else:
                print()
                print_profile(f"profile of lockgate serve, {run['backend']} updates", profile)
    if len(runs) == 2 and runs[1]["updates_per_s"]:
        ratio = runs[0]["updates_per_s"] / runs[1]["updates_per_s"]
        print(f"\n{runs[0]['backend']} / {runs[1]['backend']} updates/s = {ratio:.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/run updates", description=__doc__.split("\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--seconds", type=float, default=20, help="load time per backend")
    parser.add_argument("--concurrency", type=int, default=8, help="client threads (default 8)")
    parser.add_argument("--flags", type=int, default=50, help="flags updated (default 50)")
    parser.add_argument(
        "--keep", action="store_true", help="keep each server's data directory and log"
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="then run a second, untimed pass under py-spy (raw stacks in DIR)",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write all figures here")
    args = parser.parse_args(argv)
    if not 1 <= args.concurrency <= 256 or not 1 <= args.seconds <= 600 or args.flags < 1:
        parser.error("--concurrency 1..256, --seconds 1..600, --flags >= 1")
    backends = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    started = now_iso()
    runs = [bench_backend(backend, args) for backend in backends]
    results = {
        "benchmark": "updates",
        "timestamp": started,
        "command": sys.argv,
        "machine": machine(),
        "runs": runs,
    }
    print_report(results)
    write_json(args.json, results)
    healthy = all(r["audit"]["ok"] and r["audit_verify"]["intact"] for r in runs)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
