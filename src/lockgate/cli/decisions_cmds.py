"""The decision log and privacy: ``lockgate decisions list|export``, ``lockgate subject
export|delete`` and ``lockgate envs privacy`` (docs/decisions.md, docs/privacy.md).

Exports write JSON lines to standard output as they arrive from the server.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from lockgate.cli.approvals_cmds import add_plan, governed
from lockgate.cli.groups import add_command, add_group
from lockgate.cli.http import api_path, client_for
from lockgate.cli.output import Column, print_json, print_table

__all__ = ["register"]

KINDS = (
    "denied",
    "approval_required",
    "kill_fallback",
    "incident_fallback",
    "excluded",
    "runtime_approval",
    "tool_denied",
    "tool_approval_required",
    "guardrail_exclusion",
)
COLUMNS: list[Column] = [
    ("DECIDED", lambda r: r["decided_at"]),
    ("KIND", lambda r: r["kind"]),
    ("BEHAVIOR", lambda r: r["behavior"]),
    ("VARIATION", lambda r: r["variation"]),
    ("REASON", lambda r: r["reason"]),
    ("RULE", lambda r: r["rule"]),
    ("SUBJECT", lambda r: r["context_key"]),
    ("REDACTED", lambda r: ",".join(r["redacted"])),
]


def register(commands: Any) -> None:
    sub = add_group(commands, "decisions", "the decision log's full records")
    ls = add_command(sub, "list", "decision records, newest first", run_list)
    _filters(ls)
    ls.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    export = add_command(
        sub, "export", "decision records as JSON lines, oldest first (for a SIEM)", run_export
    )
    _filters(export)

    subject = add_group(commands, "subject", "one subject's decision records (project admins)")
    exp = add_command(
        subject, "export", "every record of one context key, as JSON lines", run_subject_export
    )
    exp.add_argument("project", metavar="PROJECT")
    exp.add_argument("key", metavar="CONTEXT_KEY")
    exp.add_argument("--reason", default="", help="why (kept in the audit log)")
    delete = add_command(
        subject, "delete", "delete every record of one context key", run_subject_delete
    )
    delete.add_argument("project", metavar="PROJECT")
    delete.add_argument("key", metavar="CONTEXT_KEY")
    delete.add_argument("--reason", required=True, help="why (kept in the audit log)")
    add_plan(delete)


def _filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("project", metavar="PROJECT")
    parser.add_argument("--env", required=True, metavar="ENV")
    parser.add_argument("--behavior", metavar="KEY")
    parser.add_argument("--kind", choices=KINDS)
    parser.add_argument("--reason", metavar="REASON", help="e.g. KILLED, RULE_MATCH, approved")
    parser.add_argument("--variation", metavar="KEY")
    parser.add_argument("--context-key", metavar="KEY", help="one subject (as given or hashed)")
    parser.add_argument("--since", metavar="TIME", help="ISO 8601, inclusive")
    parser.add_argument("--until", metavar="TIME", help="ISO 8601, exclusive")


def _path(args: argparse.Namespace, *more: str) -> str:
    return api_path("projects", args.project, "environments", args.env, "decisions", *more)


def _params(args: argparse.Namespace) -> dict[str, str | int | bool | None]:
    return {
        "behavior": args.behavior,
        "kind": args.kind,
        "reason": args.reason,
        "variation": args.variation,
        "context_key": args.context_key,
        "since": args.since,
        "until": args.until,
    }


def _write(chunk: str) -> None:
    sys.stdout.write(chunk)
    sys.stdout.flush()


def run_list(args: argparse.Namespace) -> int:
    with client_for(args) as api:
        params = _params(args) | {"limit": max(1, min(args.limit, 500))}
        page = api.get(_path(args), params).body
    if args.json:
        print_json(page)
    else:
        print_table(page["items"], COLUMNS)
    return 0


def run_export(args: argparse.Namespace) -> int:
    with client_for(args) as api:
        api.stream_text("GET", _path(args, "export"), _write, params=_params(args))
    return 0


def run_subject_export(args: argparse.Namespace) -> int:
    path = api_path("projects", args.project, "subjects", "export")
    with client_for(args) as api:
        api.stream_text("POST", path, _write, body={"key": args.key, "reason": args.reason})
    return 0


def run_subject_delete(args: argparse.Namespace) -> int:
    path = api_path("projects", args.project, "subjects", "delete")
    with client_for(args) as api:
        answer = api.post(
            path,
            {"key": args.key, "reason": args.reason},
            params={"plan": "true"} if args.plan else None,
        )

    def applied(result: dict[str, Any]) -> None:
        if args.json:
            print_json(result)
            return
        where = ", ".join(f"{env} {n}" for env, n in result["deleted"].items()) or "none"
        print(f"deleted {result['total']} records of {result['subject']} ({where})")

    return governed(args, answer, applied)
