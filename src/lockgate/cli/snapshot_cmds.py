"""``lockgate eval`` and ``lockgate validate`` work on a snapshot file, offline;
``lockgate snapshot pull`` fetches one from a server."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from lockgate.cli.errors import EXIT_INVALID, EXIT_USAGE, CliError
from lockgate.cli.groups import add_command, add_group
from lockgate.cli.http import api_path, client_for
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

    snapshot = add_group(commands, "snapshot", "fetch an environment's snapshot from a server")
    pull = add_command(
        snapshot,
        "pull",
        "write an environment's current snapshot to a file, for local evaluation",
        run_pull,
    )
    pull.add_argument("project", metavar="PROJECT")
    pull.add_argument("env", metavar="ENV", help="environment key")
    pull.add_argument(
        "--output", "-o", default="snapshot.json", metavar="FILE", help="default snapshot.json"
    )


def _load(path: str) -> Snapshot:
    if not Path(path).is_file():
        why = "is a directory" if Path(path).is_dir() else "no such file"
        raise CliError(f"--snapshot: cannot read {path}: {why}", EXIT_USAGE)
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


def run_pull(args: argparse.Namespace) -> int:
    path = api_path("projects", args.project, "environments", args.env, "snapshot")
    with client_for(args) as api:
        answer = api.get(path)
    text = json.dumps(answer.body, indent=2, ensure_ascii=False) + "\n"
    if args.json:
        print(text, end="")
        return 0
    _write_whole(args.output, text)
    body = answer.body if isinstance(answer.body, dict) else {}
    flags, segments = len(body.get("flags") or {}), len(body.get("segments") or {})
    print(
        f"wrote {args.output}: {args.project}/{args.env} version {body.get('version')} "
        f"({counted(flags, 'flag')}, {counted(segments, 'segment')})"
    )
    return 0


def _write_whole(path: str, text: str) -> None:
    """Write ``path`` completely or not at all."""
    partial = Path(f"{path}.partial")
    try:
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise CliError(f"--output: cannot write {path}: {exc.strerror}") from None
