"""CPU cost of the request-body limits (size and JSON depth), in one process.

Two measurements, each the median of ``--repeat`` rounds:

- ``json_depth``: the depth scan alone on four ~1 MiB bodies (one long string, an array of
  numbers, an array of small objects, brackets only);
- ``app``: a full ``POST /api/v1/projects`` with a ~1 MiB JSON body through the real
  application (SQLite in a temporary directory), called as ASGI in this process, without
  credentials, with an invalid token and with a valid token (the valid one is answered
  422: the body is well-formed JSON but not a project).

Figures are CPU milliseconds per call (``time.process_time``). Usage::

    .venv/bin/python bench/body_limits_bench.py --label after --json bench/results/x.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lockgate.api.app import build_services, create_app
from lockgate.api.limits import json_depth
from lockgate.control.identity.bootstrap import ensure_admin
from lockgate.settings import Settings

MIB = 1 << 20


def bodies() -> dict[str, bytes]:
    """Bodies just under the default 1 MiB limit."""
    numbers = json.dumps({"key": "p", "name": "n", "values": list(range(150_000))})
    objects = json.dumps({"key": "p", "items": [{"a": 1}] * 100_000})
    return {
        "string": json.dumps({"key": "p", "name": "x" * (MIB - 64)}).encode(),
        "numbers": numbers.encode()[: MIB - 8].rsplit(b",", 1)[0] + b"]}",
        "objects": objects.encode()[: MIB - 8].rsplit(b",", 1)[0] + b"]}",
        "brackets": b"[" * 20 + b"[]," * ((MIB - 64) // 3) + b"[]" + b"]" * 20,
    }


def cpu_ms(call: Callable[[], object], rounds: int) -> float:
    """Median CPU milliseconds of ``call`` over ``rounds`` rounds."""
    samples = []
    for _ in range(rounds):
        started = time.process_time()
        call()
        samples.append((time.process_time() - started) * 1000)
    return round(statistics.median(samples), 3)


async def post(app: Any, path: str, body: bytes, headers: list[tuple[bytes, bytes]]) -> int:
    """One ASGI request, the body in 64 KiB messages as a server would deliver it; the status."""
    pieces = [body[i : i + 65536] for i in range(0, len(body), 65536)] or [b""]
    queue: list[dict[str, Any]] = [
        {"type": "http.request", "body": piece, "more_body": i < len(pieces) - 1}
        for i, piece in enumerate(pieces)
    ]
    status = 0

    async def receive() -> dict[str, Any]:
        return queue.pop(0) if queue else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            *headers,
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
    }
    await app(scope, receive, send)
    return status


def app_figures(rounds: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as data:
        settings = Settings(data_dir=data)
        services = build_services(settings)
        token = ensure_admin(services).token
        app = create_app(settings, services)
        body = bodies()["numbers"]
        cases = {
            "no_credentials": [],
            "invalid_token": [(b"authorization", b"Bearer lga_not_a_real_token")],
            "valid_token": [(b"authorization", f"Bearer {token}".encode())],
        }
        loop = asyncio.new_event_loop()
        figures: dict[str, Any] = {"body_bytes": len(body)}
        try:
            for name, headers in cases.items():
                path = "/api/v1/projects"
                status = loop.run_until_complete(post(app, path, body, headers))
                figures[name] = {
                    "status": status,
                    "cpu_ms": cpu_ms(
                        lambda h=headers, p=path: loop.run_until_complete(post(app, p, body, h)),
                        rounds,
                    ),
                }
        finally:
            loop.close()
            services.database.dispose()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=21, help="rounds per figure (median)")
    parser.add_argument("--label", default="", help="recorded with the figures")
    parser.add_argument("--json", metavar="PATH", help="also write the figures here")
    args = parser.parse_args()
    scans = {
        name: {
            "bytes": len(body),
            "depth": json_depth(body),
            "cpu_ms": cpu_ms(lambda b=body: json_depth(b), args.repeat),
        }
        for name, body in bodies().items()
    }
    result = {
        "label": args.label,
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"platform": platform.platform(), "python": sys.version.split()[0]},
        "repeat": args.repeat,
        "json_depth": scans,
        "app": app_figures(args.repeat),
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text + "\n")


if __name__ == "__main__":
    main()
