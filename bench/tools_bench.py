"""What ``mode()`` and ``authorize_tool()`` cost next to ``detail()``, in one run.

The benchmark flag (``workload.FLAG``: a mode behavior, four rules, then a split) over the
same deterministic contexts, mixed as an application sees them: 2,000 users, a third of
them with a private attribute (``phone``, private to the client), some in the audience
``send_email`` is denied to (``country`` BR or IN). Offline: a ``LockgateClient`` (never
counts) and ``Client`` instances as an application runs them (counting and decision
records on, not started, no network), one per timed case so that each case's counts and
records can be checked afterwards.

Decision records wait in each client's queue for its reporting thread, which sends them in
the background; here the queue holds a whole round and is emptied between rounds, untimed
(what that thread does), so no record is dropped and no record is freed on the timed
path. (A queue left full makes every new record free the oldest on the caller's thread
as well.)

Two tools are registered: ``search`` (read) and ``send_email`` (external, denied to one
audience); the tier policy then allows, denies or asks for an approval depending on the
mode served. Each case is timed over all contexts in interleaved rounds (every case once
per round, in the same order); the best round is kept and the cost of the timing loop
itself is subtracted.

On a ``Client``, ``detail()`` is the raw evaluation, never counted (docs/sdk.md); ``mode()``
and ``authorize_tool()`` are counted and keep a full decision record of the results that
are evidence (an ``approval_required`` mode; a refused tool call). The ratios compare
exactly what an application calls.

    .venv/bin/python bench/tools_bench.py [--contexts N] [--rounds N] [--json PATH]
        [--without-records]

Targets (issue: governing AI agents): ``Client.mode()`` ≤ 1.15 x ``Client.detail()`` and
``Client.authorize_tool()`` ≤ 1.5 x ``Client.mode()`` of the same behavior.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import lockgate
from lockgate.sdk import Client, LockgateClient, SyncTuning
from peers.lockgate import snapshot_document
from workload import FLAG, make_contexts

Case = Callable[[dict[str, str]], Any]
Context = dict[str, str]
DENIED_COUNTRIES = ["BR", "IN"]
TOOLS = {
    "search": {"risk": "read", "version": 1},
    "send_email": {
        "risk": "external",
        "version": 1,
        "deny": [
            {
                "id": "sanctioned",
                "clauses": [{"attribute": "country", "op": "in", "values": DENIED_COUNTRIES}],
            }
        ],
    },
}
PRIVATE = ("phone",)
KEY = FLAG.key


def document() -> dict[str, Any]:
    doc = snapshot_document(FLAG)
    doc["tools"] = TOOLS
    return doc


def mixed_contexts(count: int) -> list[Context]:
    """The benchmark's contexts; every third one also carries a private attribute."""
    contexts = make_contexts(count)
    for index, context in enumerate(contexts):
        if index % 3 == 0:
            context["phone"] = f"+49 30 {index:07d}"
    return contexts


RECORDS = True  # --without-records: decisions=False


def client(queued: int = 100_000) -> Client:
    return Client(
        "lgs_bench",
        "http://127.0.0.1:9",
        bootstrap=document(),
        start=False,
        metrics=False,
        private_attributes=PRIVATE,
        tuning=SyncTuning(max_decisions_queued=queued),
        decisions=RECORDS,
    )


def drain(clients: list[Client]) -> None:
    """Empty the record queues, as each client's reporting thread would (untimed)."""
    for counted in clients:
        recorder = counted.decisions
        if recorder is not None:
            SENT[id(counted)] = SENT.get(id(counted), 0) + len(recorder)
            recorder._queue.clear()


SENT: dict[int, int] = {}


def cases(queued: int) -> tuple[dict[str, Case], dict[str, Client]]:
    plain = LockgateClient(document())
    clients = {name: client(queued) for name in ("detail", "mode", "read", "external")}
    d, m, r, e = (clients[n] for n in ("detail", "mode", "read", "external"))
    timed: dict[str, Case] = {
        "detail (LockgateClient)": lambda c: plain.detail(KEY, c, "off"),
        "mode (LockgateClient)": lambda c: plain.mode(KEY, c),
        "authorize_tool read (LockgateClient)": lambda c: plain.authorize_tool(KEY, "search", c),
        "authorize_tool external (LockgateClient)": (
            lambda c: plain.authorize_tool(KEY, "send_email", c)
        ),
        "detail (Client)": lambda c: d.detail(KEY, c, "off"),
        "mode (Client)": lambda c: m.mode(KEY, c),
        "authorize_tool read (Client)": lambda c: r.authorize_tool(KEY, "search", c),
        "authorize_tool external (Client)": lambda c: e.authorize_tool(KEY, "send_email", c),
    }
    return timed, {
        "mode (Client)": m,
        "authorize_tool read (Client)": r,
        "authorize_tool external (Client)": e,
    }


def allowed_cases(queued: int) -> tuple[dict[str, Case], list[Client]]:
    """The same calls on a ``Client``, timed over the contexts whose ``search`` call is
    allowed (no tool decision record: the common case in production)."""
    d, m, r = client(queued), client(queued), client(queued)
    return {
        "allowed contexts: detail (Client)": lambda c: d.detail(KEY, c, "off"),
        "allowed contexts: mode (Client)": lambda c: m.mode(KEY, c),
        "allowed contexts: authorize_tool read (Client)": (
            lambda c: r.authorize_tool(KEY, "search", c)
        ),
    }, [d, m, r]


def allowed_contexts(contexts: list[Context]) -> list[Context]:
    plain = LockgateClient(document())
    return [c for c in contexts if plain.authorize_tool(KEY, "search", c).allowed]


def per_call(case: Case, contexts: list[Context]) -> float:
    started = time.perf_counter()
    for context in contexts:
        case(context)
    return (time.perf_counter() - started) / len(contexts)


RATIOS = {
    "mode / detail (Client)": ("mode (Client)", "detail (Client)"),
    "authorize_tool read / mode (Client)": ("authorize_tool read (Client)", "mode (Client)"),
    "authorize_tool external / mode (Client)": (
        "authorize_tool external (Client)",
        "mode (Client)",
    ),
    "allowed contexts: mode / detail (Client)": (
        "allowed contexts: mode (Client)",
        "allowed contexts: detail (Client)",
    ),
    "allowed contexts: authorize_tool read / mode (Client)": (
        "allowed contexts: authorize_tool read (Client)",
        "allowed contexts: mode (Client)",
    ),
    "mode / detail (LockgateClient)": ("mode (LockgateClient)", "detail (LockgateClient)"),
    "authorize_tool read / mode (LockgateClient)": (
        "authorize_tool read (LockgateClient)",
        "mode (LockgateClient)",
    ),
    "authorize_tool external / mode (LockgateClient)": (
        "authorize_tool external (LockgateClient)",
        "mode (LockgateClient)",
    ),
}


def evidence(clients: dict[str, Client], calls: int) -> dict[str, dict[str, int]]:
    """What each counted client reported for its ``calls`` calls: evaluations counted and
    decision records made (queued or pushed out of the full queue)."""
    out = {}
    for name, counted in clients.items():
        batch = counted._counts.take() if counted._counts is not None else None
        recorder = counted.decisions
        out[name] = {
            "calls": calls,
            "counted": 0 if batch is None else sum(batch.counts.values()) + batch.dropped,
            "records": 0
            if recorder is None
            else SENT.get(id(counted), 0) + len(recorder) + recorder.dropped,
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contexts", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=25)
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    parser.add_argument(
        "--without-records",
        action="store_true",
        help="clients with decisions=False: counted, but no decision record",
    )
    args = parser.parse_args()
    global RECORDS  # noqa: PLW0603 - a benchmark switch, set once before any client
    RECORDS = not args.without_records
    contexts = mixed_contexts(args.contexts)
    allowed = allowed_contexts(contexts)
    queued = max(1_000, 2 * len(contexts))  # a round's records, at most
    mixed, counted = cases(queued)
    only_allowed, others = allowed_cases(queued)
    timed = [(name, case, contexts) for name, case in mixed.items()]
    timed += [(name, case, allowed) for name, case in only_allowed.items()]
    clients = [*counted.values(), *others]
    best = {name: float("inf") for name, _, _ in timed}
    loop = float("inf")
    gc.disable()
    for _ in range(args.rounds):
        for name, case, over in timed:
            best[name] = min(best[name], per_call(case, over))
            drain(clients)
        loop = min(loop, per_call(lambda c: None, contexts))
    gc.enable()
    ns = {name: (seconds - loop) * 1e9 for name, seconds in best.items()}
    found = {name: round(ns[a] / ns[b], 3) for name, (a, b) in RATIOS.items()}
    checked = evidence(counted, args.rounds * len(contexts))
    print(f"per call, best of {args.rounds} rounds over {len(contexts)} mixed contexts")
    for name, value in ns.items():
        print(f"  {name:55s} {value:7.0f} ns")
    for name, ratio in found.items():
        print(f"  {name:55s} {ratio:7.2f} x")
    for name, seen in checked.items():
        print(
            f"  {name:40s} calls {seen['calls']}  counted {seen['counted']}  "
            f"records {seen['records']}"
        )
    if args.json:
        result = {
            "benchmark": "tools",
            "lockgate": lockgate.__file__,
            "load_average_at_start": os.getloadavg(),
            "contexts": len(contexts),
            "allowed_contexts": len(allowed),
            "private_attribute_contexts": sum("phone" in c for c in contexts),
            "denied_audience_contexts": sum(c.get("country") in DENIED_COUNTRIES for c in contexts),
            "rounds": args.rounds,
            "decision_records": RECORDS,
            "python": sys.version.split()[0],
            "ns_per_call": {name: round(value, 1) for name, value in ns.items()},
            "ratios": found,
            "evidence": checked,
        }
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
