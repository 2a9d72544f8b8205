"""What evaluation counting and decision records cost: ``LockgateClient`` (never counts)
vs ``Client`` (counts, and keeps full records of the decisions that are evidence).

Both evaluate the benchmark flag (``workload.FLAG``: four rules, then a split) and a
trivial boolean flag over the same deterministic contexts, offline (the ``Client`` is not
started). Each case is timed over all contexts in interleaved rounds; the best round is
kept and the cost of the timing loop itself is subtracted.

    .venv/bin/python bench/sdk_counting.py [--contexts N] [--rounds N] [--json PATH]

The "decisions off" rows are the same ``Client`` with ``decisions=False``: the difference
is what decision records cost. On the trivial flag no evaluation is a record (the common
case: one dictionary read); on the benchmark flag the ~10 % of contexts served
``approval_required`` are records (a context copy and a queue append each; the queue is
bounded, so the oldest are dropped once it is full, as in an application whose reporting
thread cannot keep up).

``detail()`` is not counted (it stays bound to the compiled evaluator); the row "detail +
counting" shows what counting it would cost, which is why it is not (docs/sdk.md).
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

from lockgate.engine import EvaluationDetail
from lockgate.sdk import Client, LockgateClient
from peers.lockgate import snapshot_document
from workload import FLAG, make_contexts

Case = Callable[[dict[str, str]], Any]
BOOL = {
    "key": "b",
    "version": 1,
    "kind": "boolean",
    "variations": [{"key": "on", "value": True}, {"key": "off", "value": False}],
    "default": {"variation": "on"},
}


def cases() -> dict[str, Case]:
    doc = snapshot_document(FLAG)
    doc["flags"]["b"] = BOOL
    plain = LockgateClient(doc)
    counted = Client("lgs_bench", "http://127.0.0.1:9", bootstrap=doc, start=False)
    silent = Client(
        "lgs_bench", "http://127.0.0.1:9", bootstrap=doc, start=False, events=False, decisions=False
    )
    nodec = Client("lgs_bench", "http://127.0.0.1:9", bootstrap=doc, start=False, decisions=False)
    evaluate, record = counted._compiled.evaluate, counted._record

    def counted_detail(key: str, context: Any, default: Any = None) -> EvaluationDetail:
        detail = evaluate(key, context, default)
        record(key, detail)
        return detail

    k = FLAG.key
    return {
        "detail (LockgateClient)": lambda c: plain.detail(k, c, "x"),
        "detail (Client: not counted)": lambda c: counted.detail(k, c, "x"),
        "detail + counting (not used)": lambda c: counted_detail(k, c, "x"),
        "variation (LockgateClient)": lambda c: plain.variation(k, c, "x"),
        "variation (Client, events=False, decisions off)": lambda c: silent.variation(k, c, "x"),
        "variation (Client, counted, decisions off)": lambda c: nodec.variation(k, c, "x"),
        "variation (Client, counted + decisions)": lambda c: counted.variation(k, c, "x"),
        "mode (LockgateClient)": lambda c: plain.mode(k, c),
        "mode (Client, counted, decisions off)": lambda c: nodec.mode(k, c),
        "mode (Client, counted + decisions)": lambda c: counted.mode(k, c),
        "trivial flag: detail (LockgateClient)": lambda c: plain.detail("b", c, False),
        "trivial flag: detail + counting": lambda c: counted_detail("b", c, False),
        "trivial flag: bool_variation (LockgateClient)": lambda c: plain.bool_variation(
            "b", c, False
        ),
        "trivial flag: bool_variation (Client, counted, decisions off)": (
            lambda c: nodec.bool_variation("b", c, False)
        ),
        "trivial flag: bool_variation (Client, counted + decisions)": (
            lambda c: counted.bool_variation("b", c, False)
        ),
    }


def best_per_call(case: Case, contexts: list[dict[str, str]]) -> float:
    started = time.perf_counter()
    for context in contexts:
        case(context)
    return (time.perf_counter() - started) / len(contexts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contexts", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=25)
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = parser.parse_args()
    contexts = make_contexts(args.contexts)
    timed = cases()
    best = dict.fromkeys(timed, float("inf"))
    loop = float("inf")
    gc.disable()
    for _ in range(args.rounds):
        for name, case in timed.items():
            best[name] = min(best[name], best_per_call(case, contexts))
        loop = min(loop, best_per_call(lambda c: None, contexts))
    gc.enable()
    per_call = {name: (seconds - loop) * 1e9 for name, seconds in best.items()}
    print(f"per call, best of {args.rounds} rounds over {len(contexts)} contexts")
    for name, ns in per_call.items():
        print(f"  {name:62s} {ns:7.0f} ns")
    if args.json:
        document = {
            "benchmark": "sdk_counting",
            "contexts": len(contexts),
            "rounds": args.rounds,
            "python": sys.version.split()[0],
            "ns_per_call": {name: round(ns, 1) for name, ns in per_call.items()},
        }
        Path(args.json).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
