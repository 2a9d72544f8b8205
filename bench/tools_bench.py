"""What ``mode()`` and ``authorize_tool()`` cost next to ``detail()``, in one run.

The benchmark flag (``workload.FLAG``: a mode behavior, four rules, then a split) over the
same deterministic contexts, offline: a ``LockgateClient`` (never counts) and a ``Client``
(counts every evaluation and keeps full records of refused tool calls; not started).
Two tools are registered: ``search`` (read) and ``send_email`` (external); the tier
policy then allows, denies or asks for an approval depending on the mode served.
Each case is timed over all contexts in interleaved rounds; the best round is kept and
the cost of the timing loop itself is subtracted.

    .venv/bin/python bench/tools_bench.py [--contexts N] [--rounds N] [--json PATH]

Targets (issue: tool tiers): ``mode`` ≤ 1.15 x ``detail`` and ``authorize_tool`` ≤
1.5 x ``mode`` of the same client and behavior.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lockgate.sdk import Client, LockgateClient
from peers.lockgate import snapshot_document
from workload import FLAG, make_contexts

Case = Callable[[dict[str, str]], Any]
TOOLS = {"search": {"risk": "read", "version": 1}, "send_email": {"risk": "external", "version": 1}}


def cases() -> dict[str, Case]:
    doc = snapshot_document(FLAG)
    doc["tools"] = TOOLS
    plain = LockgateClient(doc)
    counted = Client("lgs_bench", "http://127.0.0.1:9", bootstrap=doc, start=False, metrics=False)
    k = FLAG.key
    return {
        "detail (LockgateClient)": lambda c: plain.detail(k, c, "off"),
        "mode (LockgateClient)": lambda c: plain.mode(k, c),
        "authorize_tool read (LockgateClient)": lambda c: plain.authorize_tool(k, "search", c),
        "authorize_tool external (LockgateClient)": (
            lambda c: plain.authorize_tool(k, "send_email", c)
        ),
        "detail (Client, not counted)": lambda c: counted.detail(k, c, "off"),
        "mode (Client, counted)": lambda c: counted.mode(k, c),
        "authorize_tool read (Client, counted)": lambda c: counted.authorize_tool(k, "search", c),
        "authorize_tool external (Client, counted + records)": (
            lambda c: counted.authorize_tool(k, "send_email", c)
        ),
    }


def allowed_cases() -> dict[str, Case]:
    """The same calls, timed over the contexts whose ``search`` call is allowed (the common
    case in production: no decision record)."""
    doc = snapshot_document(FLAG)
    doc["tools"] = TOOLS
    counted = Client("lgs_bench", "http://127.0.0.1:9", bootstrap=doc, start=False, metrics=False)
    k = FLAG.key
    return {
        "allowed contexts: detail (Client, not counted)": lambda c: counted.detail(k, c, "off"),
        "allowed contexts: mode (Client, counted)": lambda c: counted.mode(k, c),
        "allowed contexts: authorize_tool read (Client, counted)": (
            lambda c: counted.authorize_tool(k, "search", c)
        ),
    }


def allowed_contexts(contexts: list[dict[str, str]]) -> list[dict[str, str]]:
    doc = snapshot_document(FLAG)
    doc["tools"] = TOOLS
    plain = LockgateClient(doc)
    return [c for c in contexts if plain.authorize_tool(FLAG.key, "search", c).allowed]


def best_per_call(case: Case, contexts: list[dict[str, str]]) -> float:
    started = time.perf_counter()
    for context in contexts:
        case(context)
    return (time.perf_counter() - started) / len(contexts)


def ratios(ns: dict[str, float]) -> dict[str, float]:
    def r(a: str, b: str) -> float:
        return round(ns[a] / ns[b], 3)

    return {
        "mode / detail (LockgateClient)": r("mode (LockgateClient)", "detail (LockgateClient)"),
        "authorize_tool read / mode (LockgateClient)": r(
            "authorize_tool read (LockgateClient)", "mode (LockgateClient)"
        ),
        "authorize_tool external / mode (LockgateClient)": r(
            "authorize_tool external (LockgateClient)", "mode (LockgateClient)"
        ),
        "mode / detail (Client)": r("mode (Client, counted)", "detail (Client, not counted)"),
        "authorize_tool read / mode (Client)": r(
            "authorize_tool read (Client, counted)", "mode (Client, counted)"
        ),
        "authorize_tool external / mode (Client)": r(
            "authorize_tool external (Client, counted + records)", "mode (Client, counted)"
        ),
        "allowed contexts: mode / detail (Client)": r(
            "allowed contexts: mode (Client, counted)",
            "allowed contexts: detail (Client, not counted)",
        ),
        "allowed contexts: authorize_tool / mode (Client)": r(
            "allowed contexts: authorize_tool read (Client, counted)",
            "allowed contexts: mode (Client, counted)",
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contexts", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=25)
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = parser.parse_args()
    contexts = make_contexts(args.contexts)
    allowed = allowed_contexts(contexts)
    timed = [(name, case, contexts) for name, case in cases().items()]
    timed += [(name, case, allowed) for name, case in allowed_cases().items()]
    best = {name: float("inf") for name, _, _ in timed}
    loop = float("inf")
    gc.disable()
    for _ in range(args.rounds):
        for name, case, over in timed:
            best[name] = min(best[name], best_per_call(case, over))
        loop = min(loop, best_per_call(lambda c: None, contexts))
    gc.enable()
    per_call = {name: (seconds - loop) * 1e9 for name, seconds in best.items()}
    print(f"per call, best of {args.rounds} rounds over {len(contexts)} contexts")
    for name, ns in per_call.items():
        print(f"  {name:60s} {ns:7.0f} ns")
    found = ratios(per_call)
    for name, value in found.items():
        print(f"  {name:60s} {value:7.2f} x")
    if args.json:
        document = {
            "benchmark": "tools",
            "contexts": len(contexts),
            "allowed_contexts": len(allowed),
            "rounds": args.rounds,
            "python": sys.version.split()[0],
            "ns_per_call": {name: round(ns, 1) for name, ns in per_call.items()},
            "ratios": found,
        }
        Path(args.json).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
