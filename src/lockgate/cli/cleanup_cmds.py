"""Clean-up: ``lockgate lifecycle show|archive|restore`` and ``lockgate cleanup report``.

Archiving is refused (exit 7) while code still references the behavior or it is still
evaluated, unless ``--force`` with ``--reason``; restoring is governed (exit 9 when it
waits for approval). See docs/cleanup.md.
"""

from __future__ import annotations

import argparse
from typing import Any

from lockgate.cli.approvals_cmds import add_plan, governed
from lockgate.cli.groups import add_command, add_group
from lockgate.cli.http import api_path, client_for
from lockgate.cli.output import print_fields, print_json, print_table

__all__ = ["register"]


def register(commands: Any) -> None:
    sub = add_group(commands, "lifecycle", "a behavior's lifecycle: stage, rule, archive, restore")
    show = add_command(sub, "show", "stage, cleanup rule, staleness and code references", run_show)
    _behavior(show)
    archive = add_command(
        sub, "archive", "archive (refused while referenced or evaluated, unless --force)",
        run_archive,
    )  # fmt: skip
    _behavior(archive)
    archive.add_argument("--reason", default="", help="why (required with --force)")
    archive.add_argument(
        "--force",
        action="store_true",
        help="archive although code references it or it is still evaluated (recorded)",
    )
    add_plan(archive)
    restore = add_command(sub, "restore", "bring an archived behavior back (governed)", run_restore)
    _behavior(restore)
    restore.add_argument("--reason", default="", help="why (recorded in the audit log)")
    add_plan(restore)

    cleanup = add_group(commands, "cleanup", "what is due, stale, or referenced but gone")
    report = add_command(
        cleanup, "report", "the cleanup report of a project, per owner", run_report
    )
    report.add_argument("project", metavar="PROJECT")
    report.add_argument("--owner", help="one owner only")


def _behavior(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("project", metavar="PROJECT")
    parser.add_argument("key", metavar="BEHAVIOR")


def _path(args: argparse.Namespace, *more: str) -> str:
    return api_path("projects", args.project, "flags", args.key, "lifecycle", *more)


def run_show(args: argparse.Namespace) -> int:
    with client_for(args) as api:
        body = api.get(_path(args)).body
    if args.json:
        print_json(body)
        return 0
    rule = body.get("cleanup_rule") or {}
    check = body.get("rule_check") or {}
    print_fields(
        [
            ("behavior", body["behavior"]),
            ("owner", body.get("owner")),
            ("lifecycle", body["lifecycle"]
             + (f" ({body['permanent_reason']})" if body.get("permanent_reason") else "")),
            ("stage", f"{body['stage']} — {body['why']}"),
            ("since", body.get("since")),
            ("cleanup rule", rule.get("summary") or body.get("cleanup_rule_problem")),
            ("rule check", f"{'met' if check.get('met') else 'not met'}: {check.get('reason')}"
             if check else None),
            ("stale", "; ".join(s["detail"] + (f" in {s['environment']}" if s["environment"]
                                              else "") for s in body.get("stale") or [])),
            ("code references", len(body.get("code_references") or [])),
        ]
    )  # fmt: skip
    refs = body.get("code_references") or []
    if refs:
        print()
        for ref in refs:
            print(f"{ref['repository']}@{ref['branch']}:{ref['path']}:{ref['line']}: {ref['text']}")
    return 0


def _print_flag(flag: dict[str, Any]) -> None:
    state = "archived" if flag.get("archived") else "restored"
    print(f"flag {flag['key']} {state} (version {flag.get('version')})")


def _plan(args: argparse.Namespace) -> dict[str, str] | None:
    return {"plan": "true"} if args.plan else None


def run_archive(args: argparse.Namespace) -> int:
    body = {"reason": args.reason, "force": args.force}
    with client_for(args) as api:
        answer = api.post(_path(args, "archive"), body, params=_plan(args))
    return governed(args, answer, _print_flag)


def run_restore(args: argparse.Namespace) -> int:
    with client_for(args) as api:
        answer = api.post(_path(args, "restore"), {"reason": args.reason}, params=_plan(args))
    return governed(args, answer, _print_flag)


def run_report(args: argparse.Namespace) -> int:
    with client_for(args) as api:
        body = api.get(api_path("projects", args.project, "cleanup-report"),
                       {"owner": args.owner}).body  # fmt: skip
    if args.json:
        print_json(body)
        return 0
    if not body["owners"]:
        print("nothing is due, stale, or referenced but gone")
        return 0
    for section in body["owners"]:
        print(f"owner: {section['owner'] or '(none)'}")
        rows: list[dict[str, Any]] = []
        for item in section["cleanup_due"]:
            rows.append({"what": "cleanup due", "behavior": item["behavior"],
                         "detail": item["why"], "refs": item["code_references"]})  # fmt: skip
        for item in section["stale"]:
            detail = "; ".join(f["detail"] for f in item["findings"])
            rows.append({"what": "stale", "behavior": item["behavior"], "detail": detail,
                         "refs": item["code_references"]})  # fmt: skip
        for item in section["referenced_but_gone"]:
            rows.append({"what": f"referenced but {item['status']}", "behavior": item["behavior"],
                         "detail": _places(item["references"]),
                         "refs": len(item["references"])})  # fmt: skip
        print_table(
            rows,
            [("WHAT", lambda r: r["what"]), ("BEHAVIOR", lambda r: r["behavior"]),
             ("REFS", lambda r: r["refs"]), ("DETAIL", lambda r: r["detail"])],
        )  # fmt: skip
        print()
    return 0


def _places(refs: list[dict[str, Any]]) -> str:
    shown = [f"{r['path']}:{r['line']}" for r in refs[:3]]
    return ", ".join(shown) + (f" (+{len(refs) - 3})" if len(refs) > 3 else "")
