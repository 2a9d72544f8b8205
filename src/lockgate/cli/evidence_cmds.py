"""``lockgate evidence report|release-notes``: a behavior's evidence, from the server.

The report is fetched as JSON and rendered here with the same code the API renders with
(:mod:`lockgate.reports`), so ``--format md|html`` matches ``?format=md|html``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from lockgate.cli.errors import CliError
from lockgate.cli.groups import add_command, add_group
from lockgate.cli.http import api_path, client_for
from lockgate.cli.output import Column, print_json, print_table
from lockgate.reports import render_html, render_markdown

__all__ = ["register"]

NOTE_COLUMNS: list[Column] = [
    ("TIME", lambda n: n["ts"]),
    ("ENV", lambda n: n["environment"] or "-"),
    ("DIRECTION", lambda n: n["direction"]),
    ("ACTION", lambda n: n["action"]),
    ("SUMMARY", lambda n: n["summary"]),
]


def _range(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("behavior", metavar="BEHAVIOR", help="the flag key")
    parser.add_argument("--project", required=True, metavar="PROJECT")
    parser.add_argument(
        "--from", dest="since", metavar="TIME", help="ISO 8601, inclusive (default: creation)"
    )
    parser.add_argument("--to", dest="until", metavar="TIME", help="ISO 8601, exclusive")


def register(commands: Any) -> None:
    sub = add_group(commands, "evidence", "a behavior's evidence: report and release notes")
    report = add_command(
        sub, "report", "the evidence report of one behavior (md, html or json)", run_report
    )
    _range(report)
    report.add_argument("--format", choices=("md", "html", "json"), default="md")
    report.add_argument(
        "-o", "--output", metavar="FILE", help="write to FILE instead of standard output"
    )
    notes = add_command(
        sub, "release-notes", "what changed, for whom, why, with whose approval", run_notes
    )
    _range(notes)


def _params(args: argparse.Namespace) -> dict[str, str | int | bool | None]:
    return {"from": args.since, "to": args.until}


def _path(args: argparse.Namespace, what: str) -> str:
    return api_path("projects", args.project, "flags", args.behavior, what)


def run_report(args: argparse.Namespace) -> int:
    with client_for(args) as api:
        report = api.get(_path(args, "evidence"), _params(args)).body
    fmt = "json" if args.json else args.format
    if fmt == "json":
        text = json.dumps(report, indent=2, ensure_ascii=False) + "\n"
    elif fmt == "html":
        text = render_html(report)
    else:
        text = render_markdown(report)
    if args.output:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise CliError(f"--output: cannot write {args.output}: {exc.strerror}") from None
        verified = report["audit"]["verification"].get("ok")
        print(f"wrote {args.output} (audit chain {'verified' if verified else 'NOT verified'})")
    else:
        sys.stdout.write(text)
    return 0


def run_notes(args: argparse.Namespace) -> int:
    with client_for(args) as api:
        notes = api.get(_path(args, "release-notes"), _params(args)).body
    if args.json:
        print_json(notes)
    else:
        print_table(notes["items"], NOTE_COLUMNS)
    return 0
