"""``lockgate runtime-approvals …``: what applications ask before one action — list, show,
approve, deny."""

from __future__ import annotations

import argparse
from typing import Any

from lockgate.cli.groups import add_command, add_group
from lockgate.cli.http import api_path, client_for
from lockgate.cli.output import Column, print_fields, print_json, print_table
from lockgate.contracts.model import BEHAVIOR_KINDS

__all__ = ["register"]

STATES = ("pending", "approved", "denied", "timed_out", "withdrawn")

COLUMNS: list[Column] = [
    ("ID", lambda r: r["id"]),
    ("STATE", lambda r: r["state"]),
    ("ENV", lambda r: r["environment"]),
    ("BEHAVIOR", lambda r: r["behavior"]),
    ("ACTION", lambda r: r["action"]),
    ("APPROVALS", lambda r: f"{len(r.get('approvals') or [])}/{r['approvals_required']}"),
    ("ASKED BY", lambda r: r.get("requested_by")),
    ("EXPIRES", lambda r: r.get("expires_at")),
    ("SUMMARY", lambda r: _short(r.get("summary") or "")),
]


def _short(text: str, width: int = 60) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def register(commands: Any) -> None:
    sub = add_group(
        commands, "runtime-approvals", "actions applications ask people about: review, decide"
    )
    ls = add_command(sub, "list", "a project's runtime approval requests, newest first", run_list)
    ls.add_argument("project", metavar="PROJECT")
    ls.add_argument("--state", choices=STATES, help="only requests in this state (e.g. pending)")
    ls.add_argument("--env", metavar="ENV", help="only requests in this environment")
    ls.add_argument("--behavior", metavar="BEHAVIOR", help="only requests of this behavior")
    ls.add_argument(
        "--behavior-kind", choices=BEHAVIOR_KINDS, help="only requests of this kind of behavior"
    )
    show = add_command(sub, "show", "one request: what, for whom, why, and who decided", run_show)
    show.add_argument("id", type=int, metavar="ID")
    for name, help_text, run in (
        ("approve", "approve (approvers of its environment; never the application)", run_approve),
        ("deny", "deny: one denial decides", run_deny),
    ):
        parser = add_command(sub, name, help_text, run)
        parser.add_argument("id", type=int, metavar="ID")
        parser.add_argument("--comment", default="", help="why (recorded as evidence)")


def _path(approval_id: int, *more: str) -> str:
    return api_path("runtime-approvals", str(approval_id), *more)


def run_list(args: argparse.Namespace) -> int:
    params = {
        "state": args.state,
        "environment": args.env,
        "behavior": args.behavior,
        "behavior_kind": args.behavior_kind,
    }
    with client_for(args) as api:
        items = list(api.paged(api_path("projects", args.project, "runtime-approvals"), params))
    if args.json:
        print_json({"items": items, "next_cursor": None, "total": len(items)})
    else:
        print_table(items, COLUMNS)
    return 0


def _print(request: dict[str, Any]) -> None:
    approvals = request.get("approvals") or []
    denials = request.get("denials") or []
    context = request.get("context") or {}
    print_fields(
        [
            ("runtime approval", request["id"]),
            ("state", request["state"]),
            ("behavior", request["behavior"]),
            ("action", request["action"]),
            ("environment", f"{request['project']}/{request['environment']}"),
            ("asked by", request.get("requested_by")),
            ("asked at", request.get("created_at")),
            ("expires", request.get("expires_at")),
            ("policy", request["policy"].get("rule")),
            ("approvals", f"{len(approvals)} of {request['approvals_required']}"),
            ("approved by", [a["by"] for a in approvals]),
            ("denied by", [d["by"] for d in denials]),
            ("decided at", request.get("decided_at")),
            ("reason", request.get("reason") or None),
            ("private attributes", request.get("private_attributes") or None),
        ]
    )
    print(f"  summary: {request['summary']}")
    for name, value in context.items():
        print(f"  context {name}: {value}")
    for event in approvals + denials:
        if event.get("comment"):
            print(f"  {event['at']} {event['by']}: {event['comment']}")


def run_show(args: argparse.Namespace) -> int:
    with client_for(args) as api:
        request = api.get(_path(args.id)).body
    if args.json:
        print_json(request)
    else:
        _print(request)
    return 0


def _decide(args: argparse.Namespace, verb: str) -> int:
    with client_for(args) as api:
        request = api.post(_path(args.id, verb), {"comment": args.comment}).body
    if args.json:
        print_json(request)
    else:
        have = len(request.get("approvals") or [])
        print(
            f"runtime approval {request['id']}: {request['state']} "
            f"({have} of {request['approvals_required']} approvals)"
        )
    return 0


def run_approve(args: argparse.Namespace) -> int:
    return _decide(args, "approve")


def run_deny(args: argparse.Namespace) -> int:
    return _decide(args, "deny")
