"""``lockgate segments …``: reusable audiences of a project."""

from __future__ import annotations

import argparse
import json
from typing import Any

from lockgate.cli.errors import CliError
from lockgate.cli.groups import add_command, add_group, add_reason
from lockgate.cli.http import api_path, client_for
from lockgate.cli.output import Column, print_fields, print_json, print_table

__all__ = ["register"]

SEGMENT_COLUMNS: list[Column] = [
    ("KEY", lambda s: s["key"]),
    ("NAME", lambda s: s.get("name")),
    ("ATTRIBUTE", lambda s: s.get("attribute")),
    ("INCLUDED", lambda s: len(s.get("included") or [])),
    ("EXCLUDED", lambda s: len(s.get("excluded") or [])),
    ("RULES", lambda s: len(s.get("rules") or [])),
    ("VERSION", lambda s: s.get("version")),
]


def register(commands: Any) -> None:
    sub = add_group(commands, "segments", "list, create, show and delete segments")
    ls = add_command(sub, "list", "list a project's segments", run_list)
    ls.add_argument("project", metavar="PROJECT")
    ls.add_argument("--search", metavar="TEXT", help="text in key, name or description")
    show = add_command(sub, "show", "show a segment", run_show)
    _segment_args(show)
    create = add_command(sub, "create", "create a segment", run_create)
    _segment_args(create)
    create.add_argument("--name", default="")
    create.add_argument("--description", default="")
    create.add_argument("--attribute", default="key", help="context attribute matched")
    create.add_argument("--include", nargs="+", default=[], metavar="VALUE", help="members")
    create.add_argument("--exclude", nargs="+", default=[], metavar="VALUE", help="never members")
    create.add_argument("--rules", metavar="JSON", help='e.g. \'[{"id": "r", "clauses": [...]}]\'')
    add_reason(create)
    delete = add_command(sub, "delete", "delete a segment no flag uses", run_delete)
    _segment_args(delete)
    add_reason(delete)


def _segment_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("project", metavar="PROJECT")
    parser.add_argument("key", metavar="KEY", help="segment key")


def _path(args: argparse.Namespace, *more: str) -> str:
    return api_path("projects", args.project, "segments", *more)


def run_list(args: argparse.Namespace) -> int:
    with client_for(args) as api:
        items = list(api.paged(_path(args), {"q": args.search}))
    if args.json:
        print_json({"items": items, "next_cursor": None, "total": len(items)})
    else:
        print_table(items, SEGMENT_COLUMNS)
    return 0


def run_show(args: argparse.Namespace) -> int:
    with client_for(args) as api:
        segment = api.get(_path(args, args.key)).body
    if args.json:
        print_json(segment)
        return 0
    print_fields(
        [
            ("segment", segment["key"]),
            ("name", segment.get("name")),
            ("description", segment.get("description")),
            ("attribute", segment.get("attribute")),
            ("included", segment.get("included")),
            ("excluded", segment.get("excluded")),
            ("rules", segment.get("rules")),
            ("version", segment.get("version")),
        ]
    )
    return 0


def run_create(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {
        "key": args.key,
        "name": args.name,
        "description": args.description,
        "attribute": args.attribute,
        "included": args.include,
        "excluded": args.exclude,
        "rules": _rules(args.rules),
    }
    if args.reason:
        body["reason"] = args.reason
    with client_for(args) as api:
        segment = api.post(_path(args), body).body
    if args.json:
        print_json(segment)
    else:
        print(f"created segment {segment['key']} in {args.project}")
    return 0


def run_delete(args: argparse.Namespace) -> int:
    with client_for(args) as api:
        current = api.get(_path(args, args.key))
        api.delete(_path(args, args.key), version=current.version, reason=args.reason)
    if args.json:
        print_json({"deleted": args.key})
    else:
        print(f"deleted segment {args.key} from {args.project}")
    return 0


def _rules(text: str | None) -> list[Any]:
    if text is None:
        return []
    try:
        rules = json.loads(text)
    except ValueError as exc:
        raise CliError(f"--rules: not valid JSON: {exc}") from None
    if not isinstance(rules, list):
        raise CliError("--rules: expected a JSON list of rules")
    return rules
