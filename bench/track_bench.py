"""What ``track()`` costs on the application thread, beside ``detail()`` and ``variation()``.

An offline ``Client`` (not started: no network) serves the benchmark flag
(``workload.FLAG``: four rules, then a split) with a snapshot that binds the metric
``errors`` to it (``metrics``, docs/snapshot-format.md), and a second flag that no metric
is bound to. Each case runs over the same deterministic contexts in interleaved rounds; the
best round is kept and the cost of the timing loop itself is subtracted. Before the rounds,
every context is evaluated once through a counted call, so ``track()`` finds the variation
last served (the normal case). The background thread is not running: its draining and
sending happen off the application thread and are not part of ``track()``'s cost; the
queue is emptied between rounds so the bound on it is never reached.

The row "variation, counted (before tracking)" replays the counted path as it was before
tracking existed (evaluate, then count), so the ratio of "variation, counted, unbound"
to it is what remembering costs behaviors no metric is bound to.

    ./bench/run track [--contexts N] [--rounds N] [--json PATH]
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lockgate.engine import EvaluationDetail
from lockgate.sdk import Client, LockgateClient
from peers.lockgate import snapshot_document
from serverlib import machine, now_iso, write_json
from workload import FLAG, make_contexts

Case = Callable[[dict[str, str]], Any]


def build() -> tuple[dict[str, Case], Client]:
    doc = snapshot_document(FLAG)
    unbound = dict(doc["flags"][FLAG.key], key="unbound", salt="unbound")
    doc["flags"]["unbound"] = unbound
    doc["metrics"] = {"errors": {"behaviors": [FLAG.key]}}
    plain = LockgateClient(doc)
    # Decision records (about 8 % of these contexts are approval_required) have their own
    # benchmark (`./bench/run sdk-decisions`); here they would blur what tracking costs.
    client = Client("lgs_bench", "http://127.0.0.1:9", bootstrap=doc, start=False, decisions=False)
    evaluate, record = client._compiled.evaluate, client._record

    def old_counted(key: str, context: Any, default: Any = None) -> Any:
        detail: EvaluationDetail = evaluate(key, context, default)
        record(key, detail)
        return detail.value

    k, track = FLAG.key, client.track
    cases: dict[str, Case] = {
        "detail (LockgateClient)": lambda c: plain.detail(k, c, "x"),
        "detail (Client)": lambda c: client.detail(k, c, "x"),
        "variation, counted (before tracking)": lambda c: old_counted("unbound", c, "x"),
        "variation, counted, unbound": lambda c: client.variation("unbound", c, "x"),
        "variation, counted, bound (remembers)": lambda c: client.variation(k, c, "x"),
        "track(metric, context)": lambda c: track("errors", c),
        "track(metric, context, value)": lambda c: track("errors", c, 2.5),
        "track(..., behaviors=[...])": lambda c: track("latency", c, 2.5, [k]),
    }
    return cases, client


def per_call(case: Case, contexts: list[dict[str, str]]) -> float:
    started = time.perf_counter()
    for context in contexts:
        case(context)
    return (time.perf_counter() - started) / len(contexts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contexts", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=25)
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    contexts = make_contexts(args.contexts)
    cases, client = build()
    for context in contexts:
        client.variation(FLAG.key, context, "x")
    best = dict.fromkeys(cases, float("inf"))
    loop = float("inf")
    gc.disable()
    for _ in range(args.rounds):
        for name, case in cases.items():
            best[name] = min(best[name], per_call(case, contexts))
            client._signals.queue.clear()
        loop = min(loop, per_call(lambda c: None, contexts))
    gc.enable()
    ns = {name: round((seconds - loop) * 1e9, 1) for name, seconds in best.items()}
    print(f"per call, best of {args.rounds} rounds over {len(contexts)} contexts")
    for name, value in ns.items():
        print(f"  {name:42s} {value:7.0f} ns")
    before = ns["variation, counted (before tracking)"]
    ratio = ns["variation, counted, unbound"] / before if before > 0 else None
    if ratio is not None:
        print(f"  counted unbound / before tracking: {ratio:.3f}")
    client.close()
    write_json(
        args.json,
        {
            "benchmark": "track",
            "contexts": args.contexts,
            "rounds": args.rounds,
            "ns_per_call": ns,
            "unbound_over_before": None if ratio is None else round(ratio, 3),
            "machine": machine(),
            "date": now_iso(),
        },
    )


if __name__ == "__main__":
    main()
