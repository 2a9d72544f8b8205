"""``lockgate approvals …``: change requests — list, show, diff, approve, reject, comment,
apply, cancel — and how a governed write's answer is shown by every other command."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import datetime
from typing import Any

from lockgate.cli.errors import EXIT_OK, EXIT_PENDING, CliError
from lockgate.cli.groups import add_command, add_group, json_option
from lockgate.cli.http import Answer, api_path, client_for
from lockgate.cli.output import Column, print_fields, print_json, print_table
from lockgate.contracts.model import BEHAVIOR_KINDS

__all__ = ["add_plan", "governed", "register"]

STATES = ("open", "approved", "applied", "rejected", "cancelled", "expired", "conflicted")

REQUEST_COLUMNS: list[Column] = [
    ("ID", lambda r: r["id"]),
    ("STATE", lambda r: r["state"]),
    ("TARGET", lambda r: f"{r['object_type']} {r['object_key']}"),
    ("ENV", lambda r: r.get("environment")),
    ("ACTION", lambda r: r["action"]),
    ("APPROVALS", lambda r: f"{len(r.get('approvals') or [])}/{r['approvals_required']}"),
    ("AUTHOR", lambda r: r.get("author")),
    ("EXPIRES", lambda r: r.get("expires_at")),
]


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def add_plan(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--plan",
        action="store_true",
        help="say what the policy would do (apply, ask for approval, refuse) without doing it",
    )


def governed(
    args: argparse.Namespace, answer: Answer, applied: Callable[[dict[str, Any]], None]
) -> int:
    """Show a governed write's answer: applied (exit 0), a plan (exit 0), or a change
    request now waiting for approval (exit 9)."""
    body = answer.body
    if isinstance(body, dict) and "plan" in body and not body.get("applied", True):
        if args.json:
            print_json(body)
        else:
            _print_plan(body["plan"])
        return EXIT_OK
    if answer.proposed:
        if args.json:
            print_json(body)
        else:
            needed = body["approvals_required"]
            print(
                f"change request {body['id']} opened: {body['object_type']} "
                f"{body['object_key']}"
                + (f" in {body['environment']}" if body.get("environment") else "")
                + f" needs {_plural(needed, 'approval')} ({body['policy']['rule']}); "
                "nothing is applied yet"
            )
            print(f"  see: lockgate approvals show {body['id']}")
        return EXIT_PENDING
    applied(body)
    return EXIT_OK


def _print_plan(plan: dict[str, Any]) -> None:
    decision = plan["decision"]
    outcome = {
        "apply": "would apply now",
        "request_approval": f"would need {_plural(decision['approvals_required'], 'approval')}",
        "refuse": "would be refused",
    }[decision["outcome"]]
    print(f"{outcome} — {decision['direction']} ({decision['rule']})")
    for reason in decision.get("reasons") or []:
        print(f"  {reason}")
    print(f"  change hash {plan['change_hash']}")


def register(commands: Any) -> None:
    sub = add_group(commands, "approvals", "change requests: review, approve, apply")
    ls = add_command(sub, "list", "a project's change requests", run_list)
    ls.add_argument("project", metavar="PROJECT")
    ls.add_argument("--state", choices=STATES, help="only requests in this state")
    ls.add_argument("--env", metavar="ENV", help="only requests in this environment")
    ls.add_argument(
        "--behavior-kind", choices=BEHAVIOR_KINDS, help="only requests about this kind of behavior"
    )
    for name, help_text, run in (
        ("show", "one change request, with its approvals and comments", run_show),
        ("diff", "what the change would set, field by field", run_diff),
    ):
        parser = add_command(sub, name, help_text, run)
        parser.add_argument("id", type=int, metavar="ID")
    for name, help_text, run in (
        ("approve", "approve (never your own; approvers only)", run_approve),
        ("reject", "reject: one rejection blocks the request", run_reject),
    ):
        parser = add_command(sub, name, help_text, run)
        parser.add_argument("id", type=int, metavar="ID")
        parser.add_argument("--comment", default="", help="why")
        parser.add_argument(
            "--hash", dest="change_hash", metavar="SHA256", help="the change hash you reviewed"
        )
    note = add_command(sub, "comment", "comment on a change request", run_comment)
    note.add_argument("id", type=int, metavar="ID")
    note.add_argument("text", metavar="TEXT")
    apply = add_command(sub, "apply", "apply an approved change request (now, or --at)", run_apply)
    apply.add_argument("id", type=int, metavar="ID")
    apply.add_argument(
        "--at", metavar="TIME", help="ISO 8601 time: the server applies it then, if still approved"
    )
    apply.add_argument("--hash", dest="change_hash", metavar="SHA256")
    edit = add_command(
        sub, "edit", "change the proposed configuration (voids every approval)", run_edit
    )
    edit.add_argument("id", type=int, metavar="ID")
    edit.add_argument(
        "--config",
        required=True,
        metavar="JSON|@FILE",
        help="configuration fields to set in the proposal, e.g. '{\"default\": {...}}'",
    )
    edit.add_argument("--reason", default="")
    cancel = add_command(sub, "cancel", "withdraw a change request", run_cancel)
    cancel.add_argument("id", type=int, metavar="ID")
    cancel.add_argument("--reason", default="")


def _path(request_id: int, *more: str) -> str:
    return api_path("change-requests", str(request_id), *more)


def run_list(args: argparse.Namespace) -> int:
    params = {"state": args.state, "environment": args.env, "behavior_kind": args.behavior_kind}
    with client_for(args) as api:
        items = list(api.paged(api_path("projects", args.project, "change-requests"), params))
    if args.json:
        print_json({"items": items, "next_cursor": None, "total": len(items)})
    else:
        print_table(items, REQUEST_COLUMNS)
    return 0


def _print_request(request: dict[str, Any]) -> None:
    approvals = request.get("approvals") or []
    print_fields(
        [
            ("change request", request["id"]),
            ("title", request.get("title")),
            ("state", request["state"]),
            ("target", f"{request['object_type']} {request['object_key']}"),
            ("environment", request.get("environment")),
            ("action", request["action"]),
            ("author", request.get("author")),
            ("revision", request["revision"]),
            ("change hash", request["change_hash"]),
            ("policy", f"{request['policy']['rule']} ({request['policy']['direction']})"),
            ("approvals", f"{len(approvals)} of {request['approvals_required']}"),
            ("approved by", [a["by"] for a in approvals]),
            ("rejected by", [r["by"] for r in request.get("rejections") or []]),
            ("expires", request.get("expires_at")),
            ("apply at", request.get("apply_at")),
        ]
    )
    for reason in request["policy"].get("reasons") or []:
        print(f"  why: {reason}")
    for note in request.get("comments") or []:
        print(f"  {note['at']} {note['by']}: {note['body']}")


def run_show(args: argparse.Namespace) -> int:
    with client_for(args) as api:
        request = api.get(_path(args.id)).body
    if args.json:
        print_json(request)
    else:
        _print_request(request)
    return 0


def run_diff(args: argparse.Namespace) -> int:
    with client_for(args) as api:
        diff = api.get(_path(args.id, "diff")).body
    if args.json:
        print_json(diff)
        return 0
    print(f"change request {diff['id']} (revision {diff['revision']}): {diff['target']}")
    columns: list[Column] = [
        ("FIELD", lambda f: f["field"]),
        ("BEFORE", lambda f: f["before"]),
        ("AFTER", lambda f: f["after"]),
    ]
    print_table(diff["fields"], columns)
    return 0


def _decide(args: argparse.Namespace, verb: str) -> int:
    body: dict[str, Any] = {"comment": args.comment}
    if args.change_hash:
        body["change_hash"] = args.change_hash
    with client_for(args) as api:
        request = api.post(_path(args.id, verb), body).body
    if args.json:
        print_json(request)
    else:
        have = len(request.get("approvals") or [])
        print(
            f"change request {request['id']}: {request['state']} "
            f"({have} of {_plural(request['approvals_required'], 'approval')})"
        )
    return 0


def run_approve(args: argparse.Namespace) -> int:
    return _decide(args, "approve")


def run_reject(args: argparse.Namespace) -> int:
    return _decide(args, "reject")


def run_comment(args: argparse.Namespace) -> int:
    with client_for(args) as api:
        request = api.post(_path(args.id, "comments"), {"body": args.text}).body
    if args.json:
        print_json(request)
    else:
        print(f"commented on change request {request['id']}")
    return 0


def run_apply(args: argparse.Namespace) -> int:
    with client_for(args) as api:
        if args.at is not None:
            try:
                when = datetime.fromisoformat(args.at)
            except ValueError:
                raise CliError(f"--at: not an ISO 8601 time: {args.at!r}") from None
            request = api.put(_path(args.id, "schedule"), {"apply_at": when.isoformat()}).body
            if args.json:
                print_json(request)
            else:
                print(f"change request {request['id']} will apply at {request['apply_at']}")
            return 0
        body: dict[str, Any] = {}
        if args.change_hash:
            body["change_hash"] = args.change_hash
        result = api.post(_path(args.id, "apply"), body).body
    if args.json:
        print_json(result)
    else:
        request = result["change_request"]
        print(
            f"change request {request['id']} applied (audit entry {request['applied_audit_seq']})"
        )
    return 0


def run_edit(args: argparse.Namespace) -> int:
    fields = json_option(args.config, "--config", files=True)
    if not isinstance(fields, dict):
        raise CliError('--config: expected a JSON object such as {"on": true}')
    fields.pop("reason", None)
    if args.reason:
        fields["reason"] = args.reason
    with client_for(args) as api:
        request = api.patch(_path(args.id), fields).body
    if args.json:
        print_json(request)
    else:
        print(
            f"change request {request['id']} is now revision {request['revision']}: "
            f"earlier approvals are void ({request['state']}, "
            f"0 of {_plural(request['approvals_required'], 'approval')})"
        )
    return 0


def run_cancel(args: argparse.Namespace) -> int:
    with client_for(args) as api:
        request = api.post(_path(args.id, "cancel"), {"reason": args.reason}).body
    if args.json:
        print_json(request)
    else:
        print(f"change request {request['id']} cancelled")
    return 0
