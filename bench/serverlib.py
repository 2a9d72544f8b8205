"""Shared pieces of the server benchmarks (`./bench/run updates`, `./bench/run ruleset`).

A real `lockgate serve` process (the way README starts it) on a temporary data directory,
on SQLite or on a fresh PostgreSQL database created for the run and dropped after it;
latency percentiles; per-process CPU time; the machine description; table printing.
Every server is bound to 127.0.0.1 and stopped, by its own PID, when the run ends.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
PG_ADMIN_URL = os.environ.get(
    "LOCKGATE_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
LOOPBACK = "127.0.0.1"
PYSPY = BENCH_DIR / ".peers" / "pyspy" / "bin" / "py-spy"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _commit() -> str | None:
    """The checked-out commit, with ``-dirty`` when tracked files differ from it."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "diff", "--quiet", "HEAD"], cwd=ROOT, capture_output=True, check=False
        ).returncode
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("-dirty" if dirty else "")


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "platform": platform.platform(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "load_average_at_start": os.getloadavg(),
        "commit": _commit(),
        "note": "shared, noisy 2-core machine: compare ratios within one run, not across runs",
    }


def percentile(sorted_values: Sequence[float], pct: float) -> float | None:
    """Nearest-rank percentile of already sorted values (None when there are none)."""
    if not sorted_values:
        return None
    rank = max(1, min(len(sorted_values), round(pct / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def table(header: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1) -> str:
    """A plain-text table: the first `left` columns left-aligned, the others right-aligned."""
    all_rows = [list(header), *[list(r) for r in rows]]
    widths = [max(len(row[i]) for row in all_rows) for i in range(len(header))]
    lines = []
    for row in all_rows:
        cells = [
            cell.ljust(w) if i < left else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def write_json(path: Path | None, results: dict[str, Any]) -> None:
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {path}")


# -- PostgreSQL -----------------------------------------------------------------------------


def _pg_url(name: str) -> str:
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    return f"{base}/{name}"


@contextlib.contextmanager
def pg_database(prefix: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this run; dropped afterwards."""
    import psycopg

    name = f"{prefix}_{secrets.token_hex(5)}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _pg_url(name)
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# -- processes --------------------------------------------------------------------------------


@dataclass
class Process:
    """A server process this run started (and will stop, by PID)."""

    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    base_url: str

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def wait_ready(self, path: str, timeout: float, ok: Sequence[int] = (200,)) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with status {self.proc.returncode} before it was "
                    f"ready; last lines of {self.log_path}:\n{self.log_tail()}"
                )
            try:
                response = httpx.get(self.base_url + path, timeout=2)
                if response.status_code in ok:
                    return
                last = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            time.sleep(0.25)
        raise RuntimeError(f"{self.name} not ready after {timeout:.0f} s ({last})")

    def stop(self, timeout: float = 15) -> None:
        """SIGINT (graceful), then SIGKILL: only this process, by its PID."""
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def start_process(
    name: str, cmd: list[str], env: dict[str, str], log_path: Path, base_url: str, cwd: Path
) -> Process:
    log = log_path.open("wb")
    proc = subprocess.Popen(
        cmd, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
    )
    log.close()
    return Process(name, proc, log_path, base_url)


def lockgate_bin() -> Path:
    """The `lockgate` command of the venv running this script (the project's .venv)."""
    candidate = Path(sys.executable).parent / "lockgate"
    if candidate.exists():
        return candidate
    found = shutil.which("lockgate")
    if found is None:
        raise RuntimeError("no `lockgate` command next to this Python; run ./scripts/bootstrap")
    return Path(found)


SERVER_PYTHON_ENV = "LOCKGATE_BENCH_SERVER_PYTHON"


def serve_command() -> list[str]:
    """`lockgate`, or the same CLI under $LOCKGATE_BENCH_SERVER_PYTHON (experiments only:
    e.g. an interpreter whose environment also has uvloop and httptools, which uvicorn then
    picks up by itself)."""
    other = os.environ.get(SERVER_PYTHON_ENV)
    if other:
        return [other, "-c", "import sys; from lockgate.cli.main import main; sys.exit(main())"]
    return [str(lockgate_bin())]


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("LOCKGATE_")}


@dataclass
class LockgateServer:
    """`lockgate serve` on a temporary data directory; PostgreSQL when `database_url`."""

    data_dir: Path
    database_url: str = ""
    token: str = field(default_factory=lambda: "lgt_bench_" + secrets.token_urlsafe(24))
    port: int = field(default_factory=free_port)
    process: Process | None = None
    settings: dict[str, str] = field(default_factory=dict)
    """Server settings by name (``max_new_streams_per_second``: ``"250"``), as LOCKGATE_*."""

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def backend(self) -> str:
        return "postgres" if self.database_url else "sqlite"

    def start(self) -> Process:
        env = _clean_env() | {"LOCKGATE_BOOTSTRAP_ADMIN_TOKEN": self.token}
        env |= {f"LOCKGATE_{name.upper()}": value for name, value in self.settings.items()}
        cmd = [
            *serve_command(),
            "serve",
            "--host",
            LOOPBACK,
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
        ]
        if self.database_url:
            cmd += ["--database-url", self.database_url]
        self.process = start_process(
            "lockgate serve", cmd, env, self.data_dir / "serve.log", self.base_url, ROOT
        )
        self.process.wait_ready("/readyz", timeout=60)
        return self.process

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def client(self, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token}", "Accept-Encoding": "identity"}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=30, **kwargs)

    def audit_verify(self) -> dict[str, Any]:
        """`lockgate audit verify --json` on this server's database (run after stop())."""
        cmd = [str(lockgate_bin()), "audit", "verify", "--json", "--data-dir", str(self.data_dir)]
        if self.database_url:
            cmd += ["--database-url", self.database_url]
        done = subprocess.run(
            cmd, env=_clean_env(), capture_output=True, text=True, timeout=300, check=False
        )
        report: dict[str, Any] = {"exit_code": done.returncode, "command": " ".join(cmd[1:])}
        try:
            report["report"] = json.loads(done.stdout)
        except json.JSONDecodeError:
            report["stdout"] = done.stdout[-2000:]
        if done.stderr.strip():
            report["stderr"] = done.stderr[-2000:]
        report["intact"] = done.returncode == 0
        return report


@contextlib.contextmanager
def lockgate_server(backend: str, keep: bool = False) -> Iterator[LockgateServer]:
    """A started lockgate server on `backend` (sqlite|postgres), stopped and cleaned after."""
    tmp = Path(tempfile.mkdtemp(prefix=f"lockgate-bench-{backend}-"))
    try:
        with contextlib.ExitStack() as stack:
            url = (
                stack.enter_context(pg_database("lockgate_bench")) if backend == "postgres" else ""
            )
            server = LockgateServer(tmp, url)
            try:
                server.start()
                yield server
            finally:
                server.stop()
    finally:
        if keep:
            print(f"kept {tmp} (serve.log, data)", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def api(
    client: httpx.Client, method: str, path: str, ok: Sequence[int], **kw: Any
) -> httpx.Response:
    """One management-API call during setup; anything but `ok` aborts the run."""
    response = client.request(method, path, **kw)
    if response.status_code not in ok:
        raise RuntimeError(
            f"{method} {path} answered {response.status_code}: {response.text[:500]}"
        )
    return response


def etag_version(response: httpx.Response) -> int:
    return int(response.headers["etag"].strip().removeprefix("W/").strip('"'))


# -- profiling ----------------------------------------------------------------------------------


def _frame_name(frame: str) -> str:
    """`func (path/to/file.py:123)` -> `func (file.py)`."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    marker = "site-packages/"
    short = path.split(marker, 1)[1] if marker in path else path.replace(str(ROOT) + "/", "")
    return f"{name} ({short})"


# Innermost frames of a thread that is waiting, not working: left out of the shares.
WAITING = frozenset(
    {
        "wait (threading.py)",
        "get (queue.py)",
        "select (selectors.py)",
        "_wait_for_tstate_lock (threading.py)",
    }
)


def summarize_profile(raw: Path, top: int = 25) -> dict[str, Any]:
    """Inclusive and self shares of the samples in which a thread was working."""
    inclusive: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    total = waiting = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame_name(f) for f in stack.split(";")[1:]]  # [0] is the thread
        if not frames:
            continue
        name, _, where = frames[-1].partition(" (")
        if f"{name.rsplit('.', 1)[-1]} ({where}" in WAITING:
            waiting += count
            continue
        total += count
        leaf[frames[-1]] += count
        for name in set(frames):
            inclusive[name] += count
    return {
        "samples": total,
        "waiting_samples": waiting,
        "inclusive": [(n, c / total) for n, c in inclusive.most_common(top)] if total else [],
        "self": [(n, c / total) for n, c in leaf.most_common(top)] if total else [],
    }


def start_pyspy(pid: int, seconds: float, raw: Path) -> subprocess.Popen[bytes] | None:
    """py-spy sampling `pid` for `seconds` into `raw` (collapsed stacks), or None if absent."""
    if not PYSPY.exists():
        return None
    raw.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [
            str(PYSPY),
            "record",
            "--pid",
            str(pid),
            "--duration",
            f"{seconds:g}",
            "--rate",
            "200",
            "--format",
            "raw",
            "--output",
            str(raw),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def print_profile(title: str, summary: dict[str, Any], top: int = 15) -> None:
    print(
        f"{title}: {summary['samples']} samples of working threads "
        f"({summary['waiting_samples']} waiting ones left out)"
    )
    print("  inclusive (function and what it calls):")
    for func, share in summary["inclusive"][:top]:
        print(f"    {share:6.1%}  {func}")
    print("  self (the function's own code):")
    for func, share in summary["self"][:top]:
        print(f"    {share:6.1%}  {func}")
