"""``lockgate eval`` and ``lockgate validate``: work on a snapshot file, offline."""

from __future__ import annotations

import argparse
import json
from typing import Any

from lockgate.cli.errors import EXIT_INVALID, CliError
from lockgate.cli.output import counted
from lockgate.engine import Snapshot, SnapshotError, evaluate, validate
from lockgate.sdk import read_snapshot_file

__all__ = ["register"]


def register(commands: Any) -> None:
    ev = commands.add_parser(
        "eval",
        help="evaluate one flag of a snapshot file for a context",
        description="Evaluate a flag locally from a snapshot file; print value, variation, reason.",
    )
    ev.add_argument("--snapshot", required=True, metavar="FILE", help="snapshot JSON file")
    ev.add_argument("--flag", required=True, metavar="KEY", help="flag key")
    ev.add_argument(
        "--context", default="{}", metavar="JSON", help='context object, e.g. \'{"key": "u1"}\''
    )
    ev.add_argument(
        "--default", default="null", metavar="JSON", help="value served on error (JSON)"
    )
    ev.add_argument("--json", action="store_true", help="print the full result as JSON")
    ev.set_defaults(run=run_eval)

    va = commands.add_parser(
        "validate",
        help="check a snapshot file and list its problems",
        description="Validate a snapshot file; exits 3 and lists every problem if it has any.",
    )
    va.add_argument("--snapshot", required=True, metavar="FILE", help="snapshot JSON file")
    va.add_argument("--json", action="store_true", help="print problems as JSON")
    va.set_defaults(run=run_validate)


def _load(path: str) -> Snapshot:
    try:
        return read_snapshot_file(path)
    except SnapshotError as exc:
        # Problems of the whole file ("$": unreadable, not JSON) already name the file.
        lines = [p.message if p.path == "$" else f"{path}: {p}" for p in exc.problems]
        raise CliError("\n".join(lines), EXIT_INVALID) from None


def _json_arg(text: str, name: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise CliError(f"--{name}: not valid JSON: {exc}") from None


def run_eval(args: argparse.Namespace) -> int:
    context = _json_arg(args.context, "context")
    if not isinstance(context, dict):
        raise CliError('--context: expected a JSON object such as {"key": "user-1"}')
    default = _json_arg(args.default, "default")
    snapshot = _load(args.snapshot)
    problems = validate(snapshot)
    if problems:
        raise CliError("\n".join(f"{args.snapshot}: {p}" for p in problems), EXIT_INVALID)
    result = evaluate(snapshot, args.flag, context, default)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 1 if result.error_code is not None else 0
    print(f"value:     {json.dumps(result.value)}")
    print(f"variation: {result.variation if result.variation is not None else '-'}")
    reason = result.reason.value
    if result.rule_id:
        reason += f" (rule {result.rule_id})"
    if result.error_code:
        reason += f" (error {result.error_code.value})"
    print(f"reason:    {reason}")
    print(f"version:   {result.flag_version if result.flag_version is not None else '-'}")
    return 1 if result.error_code is not None else 0


def run_validate(args: argparse.Namespace) -> int:
    snapshot = _load(args.snapshot)
    problems = validate(snapshot)
    if args.json:
        print(json.dumps([{"path": p.path, "message": p.message} for p in problems], indent=2))
    elif problems:
        for problem in problems:
            print(f"{args.snapshot}: {problem}")
    else:
        counts = (
            f"{counted(len(snapshot.flags), 'flag')}, {counted(len(snapshot.segments), 'segment')}"
        )
        print(f"{args.snapshot}: ok ({counts}, version {snapshot.version})")
    return EXIT_INVALID if problems else 0
