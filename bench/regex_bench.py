"""The slowest regular expressions lockgate accepts, timed on 1 kB inputs (ADR 0003).

Patterns are generated from a small grammar (single characters, classes, groups and every
kind of repetition) with a fixed seed; those `compile_bounded` accepts are searched in
adversarial inputs of `MAX_INPUT` characters (runs of one character, alternations, a
run ending in a character nothing matches). Each pattern is timed once per input, then
the slowest are timed again (best of `--repeat`) both as compiled by lockgate and as
plain `re.compile` of the same text, which shows what the rewrite saves. Run it through
`./bench/run regex` (see docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import re
import sys
import time
import timeit
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lockgate.engine.regex import MAX_INPUT, UnsafePatternError, compile_bounded

ATOMS = ["a", "b", "x", "@", "[a-z]", "[ab]", "[^b]", ".", r"\d", r"\w", r"\s", "(?:ab)", "(a|x)"]
COUNTS = ["", "", "", "*", "+", "?", "{0,64}", "{1,64}", "{2,}"]
INPUTS = {
    **{f"{c!r}*{MAX_INPUT}": c * MAX_INPUT for c in "abx1@ "},
    f"'ab'*{MAX_INPUT // 2}": "ab" * (MAX_INPUT // 2),
    f"'a1'*{MAX_INPUT // 2}": "a1" * (MAX_INPUT // 2),
    f"'a'*{MAX_INPUT - 1}+'!'": "a" * (MAX_INPUT - 1) + "!",
}
GOAL_MS = 15.0  # ADR 0003: the accepted worst per search of MAX_INPUT characters


def candidates(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    seen: dict[str, None] = {}
    while len(seen) < count:
        parts = rng.randint(1, 6)
        body = "".join(rng.choice(ATOMS) + rng.choice(COUNTS) for _ in range(parts))
        seen[("^" if rng.random() < 0.1 else "") + body] = None
    return list(seen)


def worst(search: Callable[[str], Any], repeat: int) -> tuple[float, str]:
    """Best-of-``repeat`` seconds on the slowest input, and that input's name."""
    return max(
        (min(timeit.repeat(lambda t=text: search(t), number=1, repeat=repeat)), name)
        for name, text in INPUTS.items()
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patterns", type=int, default=30_000)
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    accepted: list[tuple[str, re.Pattern[str]]] = []
    refused = 0
    for pattern in candidates(args.patterns, args.seed):
        try:
            accepted.append((pattern, compile_bounded(pattern)))
        except UnsafePatternError:
            refused += 1
    first: list[tuple[float, str]] = []
    for pattern, compiled in accepted:
        slowest = 0.0
        for text in INPUTS.values():
            start = time.perf_counter()
            compiled.search(text)
            slowest = max(slowest, time.perf_counter() - start)
        first.append((slowest, pattern))
    first.sort(reverse=True)
    rows = []
    for _, pattern in first[: args.top * 2]:
        seconds, text = worst(compile_bounded(pattern).search, args.repeat)
        plain, plain_text = worst(re.compile(pattern).search, args.repeat)
        rows.append(
            {
                "pattern": pattern,
                "worst_ms": round(seconds * 1000, 3),
                "input": text,
                "as_written_ms": round(plain * 1000, 3),
                "as_written_input": plain_text,
            }
        )
    rows.sort(key=lambda row: -float(row["worst_ms"]))
    rows = rows[: args.top]
    worst_ms = float(rows[0]["worst_ms"]) if rows else 0.0
    print(f"{len(accepted)} accepted, {refused} refused of {args.patterns} generated patterns")
    print(f"{'pattern':32} {'lockgate ms':>12} {'as written ms':>14}  slowest input")
    for row in rows:
        print(
            f"{row['pattern']:32} {row['worst_ms']:12.3f} {row['as_written_ms']:14.3f}"
            f"  {row['input']}"
        )
    holds = worst_ms <= GOAL_MS
    print(f"worst accepted: {worst_ms:.3f} ms on {MAX_INPUT} characters (goal <= {GOAL_MS} ms)")
    if args.json:
        result = {
            "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": " ".join(["bench/regex_bench.py", *(argv or sys.argv[1:])]),
            "machine": {"platform": platform.platform(), "processor": platform.processor()},
            "python": sys.version,
            "generated": args.patterns,
            "seed": args.seed,
            "accepted": len(accepted),
            "refused": refused,
            "input_length": MAX_INPUT,
            "repeat": args.repeat,
            "slowest": rows,
            "goal": {"worst_ms": worst_ms, "limit_ms": GOAL_MS, "holds": holds},
        }
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0 if holds else 1


if __name__ == "__main__":
    raise SystemExit(main())
