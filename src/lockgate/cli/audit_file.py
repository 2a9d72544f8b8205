"""``lockgate audit verify --file``: check an exported chain without a database.

Standard library only, so it runs in every install. Each line of the export (``lockgate
audit export``) is one entry; every hash is recomputed, every ``prev_hash`` must be the
hash before it and ``seq`` must count up by one. An export made with ``--since-seq``
starts after entries it does not hold: its first ``prev_hash`` is taken as given (only an
export from ``seq`` 1 must start at the genesis hash). Signatures live in checkpoints,
which need the database or ``--checkpoints`` (see docs/audit.md).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from lockgate.audit_chain import GENESIS, entry_hash
from lockgate.cli.errors import EXIT_BROKEN, CliError

__all__ = ["FileReport", "run_verify_file", "verify_export"]

_REQUIRED = ("seq", "prev_hash", "hash")


@dataclass(frozen=True, slots=True)
class FileReport:
    entries: int
    first_seq: int | None
    last_seq: int | None
    problem: str | None
    """The first break found (``entry N: …``), or ``None``."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.problem is None,
            "entries": self.entries,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "problems": [] if self.problem is None else [self.problem],
        }


def verify_export(lines: Iterable[str], source: str) -> FileReport:
    """The report on an export's lines; unreadable input raises :class:`CliError` (2)."""
    count, first, previous = 0, None, None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        entry = _entry(line, f"{source}:{number}")
        seq = entry["seq"]
        problem = _link_problem(entry, previous)
        if problem is not None:
            return FileReport(count, first, previous["seq"] if previous else None, problem)
        if entry_hash(entry["prev_hash"], entry) != entry["hash"]:
            problem = f"entry {seq}: modified — its hash does not match its content"
            return FileReport(count, first, previous["seq"] if previous else None, problem)
        first = seq if first is None else first
        count, previous = count + 1, entry
    return FileReport(count, first, previous["seq"] if previous else None, None)


def _entry(line: str, where: str) -> dict[str, Any]:
    try:
        entry = json.loads(line)
    except ValueError as exc:
        raise CliError(f"{where}: not a JSON line ({exc.args[0]})") from None
    if not isinstance(entry, dict):
        raise CliError(f"{where}: expected an audit entry object")
    for name in _REQUIRED:
        if name not in entry:
            raise CliError(f"{where}: field {name!r} is missing")
    if not isinstance(entry["seq"], int) or isinstance(entry["seq"], bool):
        raise CliError(f"{where}: field 'seq' must be an integer")
    if not isinstance(entry["prev_hash"], str) or not isinstance(entry["hash"], str):
        raise CliError(f"{where}: fields 'prev_hash' and 'hash' must be strings")
    return entry


def _link_problem(entry: dict[str, Any], previous: dict[str, Any] | None) -> str | None:
    seq = entry["seq"]
    if previous is None:
        if seq == 1 and entry["prev_hash"] != GENESIS:
            return "entry 1: inserted — the first entry does not follow the genesis hash"
        return None
    if seq != previous["seq"] + 1:
        expected = previous["seq"] + 1
        return f"entry {seq}: out of sequence — expected entry {expected} after {previous['seq']}"
    if entry["prev_hash"] != previous["hash"]:
        return (
            f"entry {seq}: deleted or inserted before it — prev_hash is not entry {seq - 1}'s hash"
        )
    return None


def run_verify_file(args: argparse.Namespace) -> int:
    for option, value in (
        ("--data-dir", args.data_dir),
        ("--database-url", args.database_url),
        ("--checkpoints", args.checkpoints),
        ("--public-key", args.public_key),
    ):
        if value:
            raise CliError(f"{option} cannot be used with --file: an export holds entries only")
    try:
        with open(args.file, encoding="utf-8") as lines:
            report = verify_export(lines, args.file)
    except OSError as exc:
        raise CliError(f"cannot read {args.file}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise CliError(f"{args.file}: not UTF-8 text") from None
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    elif report.problem is None:
        span = f" (seq {report.first_seq} to {report.last_seq})" if report.entries else ""
        noun = "entry" if report.entries == 1 else "entries"
        print(f"audit export OK: {report.entries} {noun}{span}, hash chain intact")
    else:
        print(f"audit export BROKEN: {report.problem}")
    return 0 if report.problem is None else EXIT_BROKEN
