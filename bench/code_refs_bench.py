"""`lockgate code-refs scan` on a generated tree, side by side with `git grep -F -f keys`.

Generates (into a temporary directory, deleted afterwards) a tree of `--files` source files
(Python, TypeScript, JavaScript, Go, Java, YAML, JSON) of `--mb` megabytes in all, and
`--keys` behavior keys; about 5 % of the files use one to three keys (in SDK calls, quoted
literals, YAML values), and decoys are planted too (a key in a comment, a longer key that
contains a key, a key inside another string). The tree is made a git repository (one
commit), then, alternating, `--repeat` times each:

* `lockgate code-refs scan TREE --keys KEYS --json` (the CLI, a fresh process; `--jobs`);
* `git grep -F -f KEYS` in the repository (git's own threads), its output counted.

Also, on a sample of the files, one Python regular expression alternating every key
(``re.compile("|".join(map(re.escape, keys)))``) against the automaton, in MB/s.
The goal (issue 16): the scan in at most 10 s for 100,000 files / 1 GB / 1,000 keys.
Run it through `./bench/run code-refs` (see docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
GOAL_SECONDS = 10.0
WORDS = [
    "account",
    "order",
    "invoice",
    "render",
    "payment",
    "user",
    "session",
    "cache",
    "queue",
    "worker",
    "retry",
    "stream",
    "config",
    "value",
    "result",
    "handler",
    "client",
    "server",
    "request",
    "response",
    "token",
    "budget",
    "route",
    "model",
    "prompt",
    "agent",
    "draft",
    "review",
    "approve",
    "refund",
    "checkout",
    "renewal",
    "banner",
    "search",
    "index",
]
LANGUAGES = {
    ".py": ("# ", 'x = client.variation("{k}", ctx, False)', "value = {a}_{b}({c}, '{a}')"),
    ".ts": ("// ", "const on = client.getBooleanValue('{k}', false);", "const {a} = {b}({c});"),
    ".js": ("// ", 'if (flags["{k}"]) {{ run(); }}', "let {a} = {b}.{c}();"),
    ".go": ("// ", 'v := client.BoolVariation("{k}", ctx, false)', "{a} := {b}({c})"),
    ".java": ("// ", 'boolean on = client.getBooleanValue("{k}", false);', "int {a} = {b}({c});"),
    ".yaml": ("# ", "behavior: {k}", "{a}: {b}"),
    ".json": ("", '{{"behavior": "{k}"}}', '{{"{a}": "{b}"}}'),
}


def make_keys(count: int, rng: random.Random) -> list[str]:
    keys: set[str] = set()
    while len(keys) < count:
        keys.add(f"{rng.choice(WORDS)}-{rng.choice(WORDS)}-{rng.randrange(10_000):04d}")
    return sorted(keys)


def filler(ext: str, size: int, rng: random.Random) -> str:
    """About ``size`` characters of plausible code lines of one language."""
    template = LANGUAGES[ext][2]
    lines = []
    total = 0
    while total < size:
        line = template.format(a=rng.choice(WORDS), b=rng.choice(WORDS), c=rng.choice(WORDS))
        line = line * rng.randint(1, 3)
        lines.append(line)
        total += len(line) + 1
    return "\n".join(lines) + "\n"


def generate(
    root: Path, files: int, total_bytes: int, keys: list[str], seed: int
) -> dict[str, Any]:
    """Write the tree; return how many references and decoys were planted."""
    rng = random.Random(seed)
    exts = list(LANGUAGES)
    per_file = total_bytes // files
    chunks = {ext: [filler(ext, per_file, rng) for _ in range(16)] for ext in exts}
    planted = decoys = 0
    for i in range(files):
        ext = exts[i % len(exts)]
        directory = root / f"pkg{i // 1000:03d}"
        if i % 1000 == 0:
            directory.mkdir(parents=True, exist_ok=True)
        body = chunks[ext][rng.randrange(16)]
        if rng.random() < 0.05:
            comment, use, _ = LANGUAGES[ext]
            extra = []
            for _ in range(rng.randint(1, 3)):
                extra.append(use.format(k=rng.choice(keys)))
                planted += 1
            if comment:
                extra.append(f"{comment}was {rng.choice(keys)!r} before")
                decoys += 1
            extra.append(f'label = "{rng.choice(keys)}-v2"')
            decoys += 1
            body = "\n".join(extra) + "\n" + body
        (directory / f"f{i:06d}{ext}").write_text(body, encoding="utf-8")
    (root / ".gitignore").write_text("*.log\n")
    return {"planted_references": planted, "planted_decoys": decoys}


def tree_size(root: Path) -> tuple[int, int]:
    count = size = 0
    for directory, _, names in os.walk(root):
        if ".git" in directory.split(os.sep):
            continue
        for name in names:
            count += 1
            size += os.path.getsize(os.path.join(directory, name))
    return count, size


def git(repo: Path, *args: str, **more: Any) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, **more)


def make_repo(repo: Path) -> float:
    started = time.perf_counter()
    git(repo, "init", "-q")
    git(repo, "-c", "core.looseCompression=1", "add", "-A")
    git(repo, "-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "-q",
        "-m", "tree")  # fmt: skip
    return time.perf_counter() - started


def time_lockgate(tree: Path, keys_file: Path, jobs: int) -> dict[str, Any]:
    command = [sys.executable, "-m", "lockgate", "code-refs", "scan", str(tree), "--keys",
               str(keys_file), "--json", "--jobs", str(jobs)]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(command, check=False, capture_output=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"scan failed ({done.returncode}): {done.stderr.decode()[-2000:]}")
    result = json.loads(done.stdout)
    return {
        "seconds": round(seconds, 3),
        "scan_seconds": result["seconds"],
        "files_scanned": result["files_scanned"],
        "bytes_scanned": result["bytes_scanned"],
        "references": len(result["references"]),
        "unknown_keys": len(result["unknown"]),
    }


def time_git_grep(repo: Path, keys_file: Path) -> dict[str, Any]:
    started = time.perf_counter()
    done = subprocess.run(["git", "-C", str(repo), "grep", "-F", "-f", str(keys_file)],
                          check=False, capture_output=True)  # fmt: skip
    seconds = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise SystemExit(f"git grep failed: {done.stderr.decode()[-2000:]}")
    return {"seconds": round(seconds, 3), "matching_lines": done.stdout.count(b"\n")}


def regex_vs_automaton(tree: Path, keys: list[str], sample: int) -> dict[str, Any]:
    from lockgate.coderefs import Matcher

    paths = sorted(tree.glob("pkg000/*"))[:sample]
    texts = [p.read_text(encoding="utf-8") for p in paths]
    size = sum(len(t) for t in texts)
    alternation = re.compile("|".join(re.escape(k) for k in keys))
    started = time.perf_counter()
    regex_hits = sum(len(alternation.findall(t)) for t in texts)
    regex_seconds = time.perf_counter() - started
    matcher = Matcher(keys)
    started = time.perf_counter()
    automaton_hits = sum(len(matcher.find(t.encode(), "python")) for t in texts)
    automaton_seconds = time.perf_counter() - started
    return {
        "files": len(texts),
        "bytes": size,
        "regex_alternation_mb_s": round(size / 1e6 / regex_seconds, 1),
        "regex_hits": regex_hits,
        "automaton_mb_s": round(size / 1e6 / automaton_seconds, 1),
        "automaton_hits": automaton_hits,
    }


def commit_of() -> str:
    try:
        return git(ROOT, "rev-parse", "--short", "HEAD").stdout.decode().strip()
    except subprocess.CalledProcessError:
        return "unknown"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--mb", type=int, default=1024, help="total size of the tree (MB)")
    parser.add_argument("--keys", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=min(os.cpu_count() or 1, 4))
    parser.add_argument(
        "--regex-sample", type=int, default=200, help="files for regex vs automaton"
    )
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--dir", help="parent of the temporary tree (default: the system's)")
    parser.add_argument("--json", metavar="PATH", help="write the raw results here")
    args = parser.parse_args()

    rng = random.Random(args.seed)
    keys = make_keys(args.keys, rng)
    work = Path(tempfile.mkdtemp(prefix="lockgate-coderefs-", dir=args.dir))
    try:
        tree = work / "tree"
        tree.mkdir()
        keys_file = work / "keys.txt"
        keys_file.write_text("\n".join(keys) + "\n")
        load_before = os.getloadavg()
        started = time.perf_counter()
        planted = generate(tree, args.files, args.mb * 1024 * 1024, keys, args.seed)
        generated = time.perf_counter() - started
        files, size = tree_size(tree)
        print(f"generated {files} files, {size / 1e6:.0f} MB in {generated:.1f} s", flush=True)
        repo_seconds = make_repo(tree)
        print(f"git repository made in {repo_seconds:.1f} s", flush=True)
        lockgate_runs, grep_runs = [], []
        for round_ in range(args.repeat):
            lockgate_runs.append(time_lockgate(tree, keys_file, args.jobs))
            grep_runs.append(time_git_grep(tree, keys_file))
            print(f"round {round_ + 1}: lockgate {lockgate_runs[-1]['seconds']:.2f} s, "
                  f"git grep {grep_runs[-1]['seconds']:.2f} s", flush=True)  # fmt: skip
        single = time_lockgate(tree, keys_file, 1)
        sample = regex_vs_automaton(tree, keys, args.regex_sample)
        load_after = os.getloadavg()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    best = min(r["seconds"] for r in lockgate_runs)
    median = statistics.median(r["seconds"] for r in lockgate_runs)
    grep_median = statistics.median(r["seconds"] for r in grep_runs)
    result = {
        "benchmark": "code-refs",
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "commit": commit_of(),
        "command": " ".join(["./bench/run code-refs", *sys.argv[1:]]),
        "machine": {"cpus": os.cpu_count(), "load_before": load_before, "load_after": load_after},
        "tree": {
            "files": files,
            "bytes": size,
            "keys": len(keys),
            **planted,
            "generate_seconds": round(generated, 1),
            "git_add_commit_seconds": round(repo_seconds, 1),
        },
        "jobs": args.jobs,
        "lockgate": {
            "runs": lockgate_runs,
            "best_seconds": best,
            "median_seconds": median,
            "single_process": single,
        },
        "git_grep": {"runs": grep_runs, "median_seconds": grep_median},
        "ratio_lockgate_to_git_grep": round(median / grep_median, 2),
        "regex_vs_automaton": sample,
        "goal_seconds": GOAL_SECONDS,
        "goal_met": median <= GOAL_SECONDS,
    }
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
