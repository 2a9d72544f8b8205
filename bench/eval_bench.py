"""Evaluation speed of lockgate against peer feature-flag SDKs, in one process and one run.

Every SDK evaluates the same flag (`workload.FLAG`) fully offline over the same
deterministic contexts. Before timing, each SDK's answers are checked against a
hand-written floor evaluator. Run it through `./bench/run eval` (see docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import socket
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, NoReturn

from peers import Adapter, Evaluator, Unavailable, all_adapters
from peers.base import Detail
from workload import FLAG, Context, FlagSpec, make_contexts

FLOOR, LOCKGATE = "floor", "lockgate"
GOAL_VS_FLOOR = 2.0  # lockgate at most 2x the floor's time per evaluation
GOAL_VS_PEER = 0.1  # lockgate at most 1/10 of the fastest peer's time per evaluation
SLICES = 10  # each timed round is split into this many interleaved slices of the contexts


class NetworkAttemptError(RuntimeError):
    pass


def _refuse_network(*args: object, **kwargs: object) -> NoReturn:
    raise NetworkAttemptError(f"an SDK tried to use the network ({args!r}); the bench is offline")


def forbid_network() -> None:
    """Make any Python-level connection or DNS lookup fail loudly."""
    socket.socket.connect = _refuse_network  # type: ignore[method-assign]
    socket.socket.connect_ex = _refuse_network  # type: ignore[method-assign]
    socket.create_connection = _refuse_network
    socket.getaddrinfo = _refuse_network


class DisagreementError(Exception):
    pass


@dataclass
class Contender:
    adapter: Adapter
    evaluator: Evaluator
    natives: list[Any]
    version: str
    runs_ns: list[float] = field(default_factory=list)
    observe_share: float | None = None

    @property
    def median_ns(self) -> float:
        return statistics.median(self.runs_ns)


def _version(adapter: Adapter) -> str:
    if adapter.distribution is None:
        return "-"
    try:
        return metadata.version(adapter.distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def build_all(
    flag: FlagSpec, contexts: list[Context], workdir: Path
) -> tuple[list[Contender], list[tuple[Adapter, str]]]:
    contenders: list[Contender] = []
    unavailable: list[tuple[Adapter, str]] = []
    for adapter in all_adapters():
        try:
            evaluator = adapter.build(flag, workdir)
        except Unavailable as exc:
            unavailable.append((adapter, str(exc)))
            continue
        except ImportError as exc:
            unavailable.append((adapter, f"not importable: {exc}"))
            continue
        natives = [evaluator.prepare_context(ctx) for ctx in contexts]
        contenders.append(Contender(adapter, evaluator, natives, _version(adapter)))
    return contenders, unavailable


def _share_tolerance(expected: float, count: int) -> float:
    """Five standard deviations of a binomial share, at least one percentage point."""
    return max(0.01, 5 * math.sqrt(expected * (1 - expected) / max(count, 1)))


def verify(
    flag: FlagSpec, contexts: list[Context], expected: list[Detail], contenders: list[Contender]
) -> None:
    """Raise unless every SDK serves the floor's value on every rule-branch context, and
    only split variations, in about the split's proportions, on the others. SDKs that
    report variation and reason (lockgate) must match the floor exactly everywhere."""
    split_variations = {part.variation for part in flag.split}
    first = flag.split[0]
    target_share = first.weight / 100_000
    for contender in contenders:
        name, evaluator = contender.adapter.name, contender.evaluator
        in_split = first_count = 0
        for ctx, native, want in zip(contexts, contender.natives, expected, strict=True):
            got = evaluator.evaluate(native)
            if evaluator.detail is not None and evaluator.detail(native) != want:
                raise DisagreementError(
                    f"{name} disagrees with the floor on {ctx}: "
                    f"got {evaluator.detail(native)}, expected {want}"
                )
            if want[2] == "RULE_MATCH":
                if got != want[0]:
                    raise DisagreementError(
                        f"{name} disagrees with the floor on {ctx} ({want[3]}): "
                        f"got {got!r}, expected {want[0]!r}"
                    )
                continue
            if got not in split_variations:
                raise DisagreementError(
                    f"{name} served {got!r} for {ctx}, which matches no rule; "
                    f"expected one of {sorted(split_variations)}"
                )
            in_split += 1
            first_count += got == first.variation
        share = first_count / max(in_split, 1)
        tolerance = _share_tolerance(target_share, in_split)
        if abs(share - target_share) > tolerance:
            raise DisagreementError(
                f"{name} served {first.variation!r} to {share:.2%} of the default-branch "
                f"contexts; expected {target_share:.0%} ± {tolerance:.2%}"
            )
        contender.observe_share = share


def _timed_ns(evaluate: Callable[[Any], str], natives: list[Any]) -> int:
    start = time.perf_counter_ns()
    for native in natives:
        evaluate(native)
    return time.perf_counter_ns() - start


def time_all(contenders: list[Contender], repeat: int, slices: int = SLICES) -> None:
    """Time `repeat` rounds of every SDK evaluating every context once.

    After one untimed warm-up pass per SDK, each round walks the contexts in `slices`
    consecutive slices and times every SDK on each slice in turn (the order rotating per
    slice and per round), so each SDK's time is spread over the whole round and they all
    share the machine's noise. The garbage collector is run before each slice and kept off
    while it is timed, as `timeit` does; the objects built during setup are frozen first,
    so those collections stay short.
    """
    for contender in contenders:
        _timed_ns(contender.evaluator.evaluate, contender.natives)
    count = len(contenders[0].natives)
    bounds = [(i * count // slices, (i + 1) * count // slices) for i in range(slices)]
    work = [
        (contender, contender.evaluator.evaluate, [contender.natives[a:b] for a, b in bounds])
        for contender in contenders
    ]
    gc.collect()
    gc.freeze()
    for round_index in range(repeat):
        elapsed = [0] * len(work)
        for slice_index in range(slices):
            shift = (round_index + slice_index) % len(work)
            gc.collect()
            gc.disable()
            try:
                for position in [*range(shift, len(work)), *range(shift)]:
                    _, evaluate, parts = work[position]
                    elapsed[position] += _timed_ns(evaluate, parts[slice_index])
            finally:
                gc.enable()
        for (contender, _, _), total in zip(work, elapsed, strict=True):
            contender.runs_ns.append(total / count)
        print(f"  round {round_index + 1}/{repeat} done", file=sys.stderr, flush=True)
    gc.unfreeze()


def _ratio(numerator: float, denominator: float | None) -> float | None:
    return None if denominator is None else numerator / denominator


def _goal(ratio: float, limit: float, **extra: object) -> dict[str, object]:
    return {"ratio": ratio, "limit": limit, "holds": ratio <= limit, **extra}


def summarize(
    contenders: list[Contender],
    unavailable: list[tuple[Adapter, str]],
    branches: Counter[str],
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Every figure of the run, as written by `--json` (and printed by `print_report`)."""
    by_name = {c.adapter.name: c for c in contenders}
    lockgate_ns = by_name[LOCKGATE].median_ns if LOCKGATE in by_name else None
    floor_ns = by_name[FLOOR].median_ns
    peers = sorted(
        (c for c in contenders if c.adapter.name not in {FLOOR, LOCKGATE}),
        key=lambda c: c.median_ns,
    )
    ordered = [c for c in contenders if c.adapter.name in {FLOOR, LOCKGATE}] + peers
    goals: dict[str, Any] = {}
    if lockgate_ns is not None:
        goals["lockgate_vs_floor"] = _goal(lockgate_ns / floor_ns, GOAL_VS_FLOOR)
        if peers:
            fastest = peers[0]
            goals["lockgate_vs_fastest_peer"] = _goal(
                lockgate_ns / fastest.median_ns, GOAL_VS_PEER, peer=fastest.adapter.name
            )
    return {
        "benchmark": "eval",
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": sys.argv,
        "machine": _machine(),
        "python": {
            "version": platform.python_version(),
            "implementation": sys.implementation.name,
            "build": sys.version,
        },
        "flag": FLAG.key,
        "contexts": {"count": args.contexts, "seed": args.seed, "branches": dict(branches)},
        "repeat": args.repeat,
        "context_construction_timed": False,
        "slices_per_round": SLICES,
        "gc_disabled_during_timing": True,
        "sdks": [
            {
                "name": c.adapter.name,
                "distribution": c.adapter.distribution,
                "version": c.version,
                "setup": c.adapter.setup,
                "median_ns": c.median_ns,
                "min_ns": min(c.runs_ns),
                "max_ns": max(c.runs_ns),
                "runs_ns": c.runs_ns,
                "evals_per_s": 1e9 / c.median_ns,
                "ratio_vs_lockgate": _ratio(c.median_ns, lockgate_ns),
                "ratio_vs_floor": c.median_ns / floor_ns,
                "default_branch_observe_share": c.observe_share,
            }
            for c in ordered
        ],
        "unavailable": [
            {"name": a.name, "distribution": a.distribution, "reason": r} for a, r in unavailable
        ],
        "goals": goals,
        "packages": sorted(f"{d.metadata['Name']}=={d.version}" for d in metadata.distributions()),
    }


def _fmt_ratio(ratio: float | None) -> str:
    return "n/a" if ratio is None else f"{ratio:.2f}x"


def print_report(results: dict[str, Any]) -> None:
    contexts = results["contexts"]
    branches = ", ".join(f"{k} {v:,}" for k, v in sorted(contexts["branches"].items()))
    print()
    print(
        f"Flag {results['flag']!r}: {contexts['count']:,} contexts ({branches}); "
        f"median of {results['repeat']} rounds."
    )
    print("Contexts are pre-built in each SDK's native type: construction is not timed.")
    print()
    header = ("SDK", "version", "median ns/eval", "evals/s", "vs lockgate", "vs floor")
    rows = [header] + [
        (
            sdk["name"],
            sdk["version"],
            f"{sdk['median_ns']:,.0f}",
            f"{sdk['evals_per_s']:,.0f}",
            _fmt_ratio(sdk["ratio_vs_lockgate"]),
            _fmt_ratio(sdk["ratio_vs_floor"]),
        )
        for sdk in results["sdks"]
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        left = [cell.ljust(w) for cell, w in zip(row[:2], widths[:2], strict=True)]
        right = [cell.rjust(w) for cell, w in zip(row[2:], widths[2:], strict=True)]
        print("  ".join(left + right))
    for sdk in results["unavailable"]:
        print(f"{sdk['name']} ({sdk['distribution']}): NOT MEASURED - {sdk['reason']}")
    print()
    goals = results["goals"]
    if not goals:
        print("lockgate was not measured: goals not evaluated.")
        return
    verdict = {True: "HOLDS", False: "MISSED"}
    floor_goal = goals["lockgate_vs_floor"]
    print(
        f"lockgate / floor        = {floor_goal['ratio']:.4f}  "
        f"(goal <= {floor_goal['limit']:g}): {verdict[floor_goal['holds']]}"
    )
    if peer_goal := goals.get("lockgate_vs_fastest_peer"):
        print(
            f"lockgate / fastest peer = {peer_goal['ratio']:.4f}  "
            f"(goal <= {peer_goal['limit']:g}): {verdict[peer_goal['holds']]}  "
            f"[{peer_goal['peer']} is {1 / peer_goal['ratio']:.1f}x slower than lockgate]"
        )


def _machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "hostname": platform.node(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/run eval", description=__doc__.split("\n")[0])
    parser.add_argument("--contexts", type=int, default=50_000, help="contexts (default 50000)")
    parser.add_argument("--repeat", type=int, default=7, help="timed rounds (default 7)")
    parser.add_argument("--seed", type=int, default=20_240_601, help="context generator seed")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write all figures here")
    args = parser.parse_args(argv)
    if args.contexts < 100 or args.repeat < 1:
        parser.error("--contexts must be >= 100 and --repeat >= 1")

    forbid_network()
    contexts = make_contexts(args.contexts, args.seed)
    with tempfile.TemporaryDirectory(prefix="lockgate-bench-") as tmp:
        print(f"building {len(all_adapters())} evaluators offline...", file=sys.stderr)
        contenders, unavailable = build_all(FLAG, contexts, Path(tmp))
        try:
            floor = next(c for c in contenders if c.adapter.name == FLOOR)
            assert floor.evaluator.detail is not None
            expected = [floor.evaluator.detail(ctx) for ctx in contexts]
            branches = Counter(d[3] or d[2].lower() for d in expected)
            split = [d[0] for d in expected if d[2] == "SPLIT"]
            floor.observe_share = split.count(FLAG.split[0].variation) / max(len(split), 1)
            print("verifying every SDK against the floor...", file=sys.stderr)
            try:
                verify(FLAG, contexts, expected, [c for c in contenders if c is not floor])
            except DisagreementError as exc:
                print(f"ABORT: {exc}", file=sys.stderr)
                return 1
            print(f"timing {args.repeat} rounds...", file=sys.stderr)
            time_all(contenders, args.repeat)
        finally:
            for contender in contenders:
                contender.evaluator.close()
    results = summarize(contenders, unavailable, branches, args)
    print_report(results)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return 0 if any(c.adapter.name == LOCKGATE for c in contenders) else 1


if __name__ == "__main__":
    sys.exit(main())
