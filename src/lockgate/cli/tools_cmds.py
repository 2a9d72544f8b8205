"""``lockgate tools …`` and ``lockgate tool-policy …``: the tools behaviors may call."""

from __future__ import annotations

import argparse
from typing import Any

from lockgate.cli.approvals_cmds import add_plan, governed
from lockgate.cli.errors import CliError
from lockgate.cli.groups import add_command, add_group, add_reason, json_option
from lockgate.cli.http import api_path, client_for
from lockgate.cli.output import Column, print_fields, print_json, print_table

__all__ = ["register"]

RISKS = ("read", "draft", "write", "external", "irreversible")
TOOL_COLUMNS: list[Column] = [
    ("KEY", lambda t: t["key"]),
    ("RISK", lambda t: t["risk"]),
    ("DENIED", lambda t: ", ".join(d["id"] for d in t.get("deny") or []) or "-"),
    ("BUDGET", lambda t: _budget_text(t.get("budget"))),
    ("VERSION", lambda t: t.get("version")),
]


def register(commands: Any) -> None:
    sub = add_group(commands, "tools", "register, change, deny and remove the tools agents call")
    ls = add_command(sub, "list", "a project's tools", run_list)
    ls.add_argument("project", metavar="PROJECT")
    show = add_command(sub, "show", "one tool", run_show)
    _tool_args(show)
    reg = add_command(sub, "register", "register a tool (governed: an expansion)", run_register)
    _tool_args(reg)
    reg.add_argument("--risk", required=True, choices=RISKS)
    _detail_args(reg)
    add_plan(reg)
    add_reason(reg)
    change = add_command(sub, "set", "change a tool's risk, description or budget", run_set)
    _tool_args(change)
    change.add_argument("--risk", choices=RISKS)
    _detail_args(change)
    change.add_argument("--no-budget", action="store_true", help="remove the call budget")
    add_plan(change)
    add_reason(change)
    deny = add_command(sub, "deny", "deny a tool to everyone or one audience, at once", run_deny)
    _tool_args(deny)
    deny.add_argument("--id", default="everyone", help="the denial's id (default: everyone)")
    deny.add_argument("--segment", metavar="SEGMENT", help="deny it to this segment only")
    deny.add_argument("--clauses", metavar="JSON", help="deny it to the contexts these match")
    deny.add_argument("--description", default="")
    add_reason(deny)
    remove = add_command(sub, "remove", "remove a tool (calls to it are denied)", run_remove)
    _tool_args(remove)
    add_reason(remove)
    policy = add_group(commands, "tool-policy", "which tool calls each mode allows")
    pshow = add_command(policy, "show", "the overrides and the effective table", run_policy_show)
    pshow.add_argument("project", metavar="PROJECT")
    pset = add_command(policy, "set", "replace the project's overrides", run_policy_set)
    pset.add_argument("project", metavar="PROJECT")
    pset.add_argument(
        "--overrides",
        required=True,
        metavar="JSON|@FILE",
        help='e.g. \'{"full": {"irreversible": {"medium": "approval_required"}}}\'',
    )
    add_plan(pset)
    add_reason(pset)


def _tool_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("project", metavar="PROJECT")
    parser.add_argument("key", metavar="TOOL", help="tool key")


def _detail_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--description")
    parser.add_argument(
        "--budget",
        metavar="CALLS/SECONDS[/ATTRIBUTE]",
        help="at most CALLS allowed calls per SECONDS for each value of ATTRIBUTE (key)",
    )


def _path(args: argparse.Namespace, *more: str) -> str:
    return api_path("projects", args.project, "tools", *more)


def _params(args: argparse.Namespace) -> dict[str, str | int | bool | None]:
    return {"plan": True} if getattr(args, "plan", False) else {}


def _budget(text: str) -> dict[str, Any]:
    parts = text.split("/")
    if len(parts) not in (2, 3) or not all(p.strip() for p in parts):
        raise CliError("--budget: expected CALLS/SECONDS or CALLS/SECONDS/ATTRIBUTE")
    try:
        calls, window = int(parts[0]), int(parts[1])
    except ValueError:
        raise CliError("--budget: CALLS and SECONDS must be whole numbers") from None
    return {"calls": calls, "window": window, "per": parts[2] if len(parts) == 3 else "key"}


def _budget_text(budget: dict[str, Any] | None) -> str:
    if not budget:
        return "-"
    return f"{budget['calls']}/{budget['window']}s per {budget.get('per', 'key')}"


def _show(tool: dict[str, Any]) -> None:
    print_fields(
        [
            ("tool", tool["key"]),
            ("risk", tool["risk"]),
            ("description", tool.get("description")),
            ("deny", tool.get("deny")),
            ("budget", _budget_text(tool.get("budget"))),
            ("version", tool.get("version")),
        ]
    )


def run_list(args: argparse.Namespace) -> int:
    with client_for(args) as api:
        body = api.get(_path(args)).body
    if args.json:
        print_json(body)
    else:
        print_table(body["items"], TOOL_COLUMNS)
    return 0


def run_show(args: argparse.Namespace) -> int:
    with client_for(args) as api:
        tool = api.get(_path(args, args.key)).body
    if args.json:
        print_json(tool)
    else:
        _show(tool)
    return 0


def _done(args: argparse.Namespace, verb: str) -> Any:
    def applied(tool: dict[str, Any]) -> None:
        if args.json:
            print_json(tool)
        else:
            print(f"{verb} tool {args.key} in {args.project} (version {tool.get('version')})")

    return applied


def run_register(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"key": args.key, "risk": args.risk, "reason": args.reason}
    if args.description is not None:
        body["description"] = args.description
    if args.budget is not None:
        body["budget"] = _budget(args.budget)
    with client_for(args) as api:
        answer = api.post(_path(args), body, params=_params(args))
    return governed(args, answer, _done(args, "registered"))


def run_set(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"reason": args.reason}
    if args.risk is not None:
        body["risk"] = args.risk
    if args.description is not None:
        body["description"] = args.description
    if args.budget is not None and args.no_budget:
        raise CliError("--budget and --no-budget exclude each other")
    if args.budget is not None:
        body["budget"] = _budget(args.budget)
    if args.no_budget:
        body["budget"] = None
    if len(body) == 1:
        raise CliError("nothing to change: give --risk, --description, --budget or --no-budget")
    with client_for(args) as api:
        current = api.get(_path(args, args.key))
        answer = api.patch(
            _path(args, args.key), body, version=current.version, params=_params(args)
        )
    return governed(args, answer, _done(args, "changed"))


def run_deny(args: argparse.Namespace) -> int:
    if args.segment is not None and args.clauses is not None:
        raise CliError("--segment and --clauses exclude each other")
    clauses: Any = []
    if args.segment is not None:
        clauses = [{"op": "segment_match", "values": [args.segment]}]
    elif args.clauses is not None:
        clauses = json_option(args.clauses, "--clauses")
    body = {
        "id": args.id,
        "clauses": clauses,
        "description": args.description,
        "reason": args.reason,
    }
    with client_for(args) as api:
        answer = api.post(_path(args, args.key, "deny"), body)
    return governed(args, answer, _done(args, "denied"))


def run_remove(args: argparse.Namespace) -> int:
    with client_for(args) as api:
        current = api.get(_path(args, args.key))
        api.delete(_path(args, args.key), version=current.version, reason=args.reason)
    if args.json:
        print_json({"removed": args.key})
    else:
        print(f"removed tool {args.key} from {args.project}")
    return 0


def run_policy_show(args: argparse.Namespace) -> int:
    with client_for(args) as api:
        view = api.get(api_path("projects", args.project, "tool-policy")).body
    if args.json:
        print_json(view)
        return 0
    print(f"tool policy of {args.project} (version {view['version']}); overrides:")
    print_json(view["overrides"])
    rows = [
        {"tier": tier, "mode": mode, **cells}
        for tier, modes in view["effective"].items()
        for mode, cells in modes.items()
    ]
    columns: list[Column] = [("TIER", lambda r: r["tier"]), ("MODE", lambda r: r["mode"])]
    columns += [(risk.upper(), _cell(risk)) for risk in RISKS]
    print_table(rows, columns)
    return 0


def _cell(risk: str) -> Any:
    def cell(row: dict[str, Any]) -> Any:
        return row[risk]

    return cell


def run_policy_set(args: argparse.Namespace) -> int:
    overrides = json_option(args.overrides, "--overrides", files=True)
    path = api_path("projects", args.project, "tool-policy")
    with client_for(args) as api:
        current = api.get(path)
        answer = api.put(
            path,
            {"overrides": overrides, "reason": args.reason},
            version=current.version,
            params=_params(args),
        )

    def applied(view: dict[str, Any]) -> None:
        if args.json:
            print_json(view)
        else:
            print(f"tool policy of {args.project} now version {view['version']}")

    return governed(args, answer, applied)
