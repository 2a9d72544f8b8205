"""``lockgate alert-triggers list|create|delete``: secret URLs that monitoring calls to
apply a reduction (docs/guardrails.md, "Alert triggers")."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from lockgate.cli.groups import add_command, add_group, add_reason
from lockgate.cli.http import api_path, client_for, server_url
from lockgate.cli.output import Column, print_json, print_table

__all__ = ["register"]

ACTIONS = ("kill", "fallback", "exclude", "pause_rollout")
COLUMNS: list[Column] = [
    ("ID", lambda t: t["id"]),
    ("NAME", lambda t: t.get("name")),
    ("FLAG", lambda t: t.get("flag")),
    ("ACTION", lambda t: t.get("action")),
    ("AUDIENCE", lambda t: t.get("audience")),
    ("CREATED", lambda t: t.get("created_at")),
]


def register(commands: Any) -> None:
    sub = add_group(commands, "alert-triggers", "alert triggers: monitoring fires a reduction")
    listing = add_command(sub, "list", "an environment's alert triggers", run_list)
    _where(listing)
    create = add_command(
        sub, "create", "create a trigger and print its URL (the secret is shown once)", run_create
    )
    _where(create)
    create.add_argument("--flag", required=True, metavar="BEHAVIOR")
    create.add_argument("--action", required=True, choices=ACTIONS)
    create.add_argument(
        "--audience",
        metavar="AUDIENCE",
        help="for exclude: segment:KEY, account:ID, region:NAME or attribute=value",
    )
    create.add_argument("--name", default="", help="default: the action and the behavior")
    create.add_argument("--description", default="")
    add_reason(create)
    delete = add_command(sub, "delete", "delete a trigger: its URL stops working", run_delete)
    _where(delete)
    delete.add_argument("id", metavar="ID")
    add_reason(delete)


def _where(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("project", metavar="PROJECT")
    parser.add_argument("--env", required=True, metavar="ENV")


def _path(args: argparse.Namespace, *more: str) -> str:
    return api_path("projects", args.project, "environments", args.env, "alert-triggers", *more)


def run_list(args: argparse.Namespace) -> int:
    with client_for(args) as api:
        items = list(api.paged(_path(args)))
    if args.json:
        print_json({"items": items, "next_cursor": None, "total": len(items)})
    else:
        print_table(items, COLUMNS)
    return 0


def run_create(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"flag": args.flag, "action": args.action}
    for name in ("audience", "name", "description", "reason"):
        value = getattr(args, name)
        if value:
            body[name] = value
    with client_for(args) as api:
        created = api.post(_path(args), body).body
    print(
        "lockgate: alert trigger created — store its URL now: the secret is shown once",
        file=sys.stderr,
    )
    if args.json:
        print_json(created)
    else:
        print(server_url(args).rstrip("/") + created["url_path"])
    return 0


def run_delete(args: argparse.Namespace) -> int:
    with client_for(args) as api:
        api.delete(_path(args, args.id), reason=args.reason)
    if args.json:
        print_json({"deleted": args.id})
    else:
        print(f"deleted alert trigger {args.id}")
    return 0
