"""Reversal: ``lockgate kill``, ``restore``, ``rollback`` and ``incident start|end|list|show``.

Kill, a rollback and an incident start apply at once (they only reduce); restoring, lifting
a rollback and ending an incident bring exposure back and are governed (a restore or a
lift may answer with a change request: exit 9).
"""

from __future__ import annotations

import argparse
from typing import Any

from lockgate.cli.approvals_cmds import add_plan, governed
from lockgate.cli.errors import CliError
from lockgate.cli.groups import add_command, add_group
from lockgate.cli.http import api_path, client_for
from lockgate.cli.output import Column, print_fields, print_json, print_table

__all__ = ["register"]

RISK_TIERS = ("low", "medium", "high", "restricted")


def _reason(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--reason", required=True, help="why (required: every reversal is audited with it)"
    )


def register(commands: Any) -> None:
    kill = add_command(
        commands, "kill", "serve a behavior's fallback to everyone now (no approval)", run_kill
    )
    kill.add_argument("project", metavar="PROJECT")
    kill.add_argument("key", metavar="BEHAVIOR")
    where = kill.add_mutually_exclusive_group(required=True)
    where.add_argument("--env", action="append", metavar="ENV", help="an environment (repeat)")
    where.add_argument("--all-envs", action="store_true", help="every environment")
    _reason(kill)

    restore = add_command(
        commands, "restore", "lift a kill: what was live before it serves again", run_restore
    )
    restore.add_argument("project", metavar="PROJECT")
    restore.add_argument("key", metavar="BEHAVIOR")
    restore.add_argument("--env", required=True, metavar="ENV")
    _reason(restore)
    add_plan(restore)

    rollback = add_command(
        commands,
        "rollback",
        "targeted rollback: one audience gets the fallback (--exclude), --list, --lift ID",
        run_rollback,
    )
    rollback.add_argument("project", metavar="PROJECT")
    rollback.add_argument("key", metavar="BEHAVIOR")
    rollback.add_argument("--env", required=True, metavar="ENV")
    what = rollback.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--exclude",
        metavar="AUDIENCE",
        help="segment:KEY, account:ID, region:NAME or attribute=value (commas: any of them)",
    )
    what.add_argument("--list", action="store_true", help="the exclusions in force")
    what.add_argument("--lift", metavar="ID", help="lift the exclusion ID (governed)")
    rollback.add_argument("--id", metavar="ID", help="the new exclusion's id (default: derived)")
    rollback.add_argument("--reason", default="", help="why (required to exclude or lift)")
    add_plan(rollback)

    _register_incident(commands)


def _register_incident(commands: Any) -> None:
    sub = add_group(commands, "incident", "incident mode: fall back and freeze expansions")
    start = add_command(sub, "start", "start an incident in one environment", run_start)
    start.add_argument("project", metavar="PROJECT")
    start.add_argument("--env", required=True, metavar="ENV")
    start.add_argument("--tag", action="append", default=[], help="behaviors with this tag")
    start.add_argument("--min-risk", choices=RISK_TIERS, help="behaviors of this tier and above")
    start.add_argument("--owner", help="behaviors of this owner")
    start.add_argument(
        "--dry-run", action="store_true", help="list what would fall back; change nothing"
    )
    _reason(start)
    end = add_command(sub, "end", "end an incident (approvers)", run_end)
    end.add_argument("project", metavar="PROJECT")
    end.add_argument("id", type=int, metavar="ID")
    _reason(end)
    ls = add_command(sub, "list", "a project's incidents, newest first", run_list)
    ls.add_argument("project", metavar="PROJECT")
    ls.add_argument("--state", choices=("active", "ended"))
    ls.add_argument("--env", metavar="ENV")
    show = add_command(sub, "show", "one incident: scope, coverage, who and why", run_show)
    show.add_argument("project", metavar="PROJECT")
    show.add_argument("id", type=int, metavar="ID")


def _flag(args: argparse.Namespace, *more: str) -> str:
    return api_path("projects", args.project, "flags", args.key, *more)


def _config(args: argparse.Namespace, *more: str) -> str:
    return _flag(args, "environments", args.env, *more)


def run_kill(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"reason": args.reason}
    if args.all_envs:
        body["all_environments"] = True
    else:
        body["environments"] = args.env
    with client_for(args) as api:
        result = api.post(_flag(args, "kill"), body).body
    if args.json:
        print_json(result)
        return 0
    for env in result["environments"]:
        state = "killed" if env["changed"] else "already killed"
        serves = f", serving {env['serves']!r} to everyone" if env.get("serves") else ""
        print(f"{args.key} in {env['environment']}: {state}{serves}")
    return 0


def run_restore(args: argparse.Namespace) -> int:
    with client_for(args) as api:
        current = api.get(_config(args))
        answer = api.post(
            _config(args, "restore"),
            {"reason": args.reason},
            version=current.version,
            params={"plan": "true"} if args.plan else None,
        )

    def applied(config: dict[str, Any]) -> None:
        edited = config.get("edited_during_kill") or []
        print(f"{args.key} in {args.env}: restored (version {config['version']})")
        if edited:
            print(f"  edited during the kill: versions {', '.join(map(str, edited))}")

    return governed(args, answer, applied)


EXCLUSION_COLUMNS: list[Column] = [
    ("ID", lambda x: x["id"]),
    ("AUDIENCE", lambda x: _audience_text(x["clauses"])),
    ("WHY", lambda x: x.get("description")),
]


def _audience_text(clauses: list[dict[str, Any]]) -> str:
    parts = []
    for clause in clauses:
        values = ",".join(map(str, clause.get("values") or []))
        if clause.get("op") == "segment_match":
            parts.append(f"segment:{values}")
        else:
            parts.append(f"{clause.get('attribute')} {clause.get('op')} {values}")
    return " and ".join(parts)


def run_rollback(args: argparse.Namespace) -> int:
    if (args.exclude or args.lift) and not args.reason.strip():
        raise CliError("--reason: say why (a rollback is audited with its reason)")
    with client_for(args) as api:
        if args.list:
            listing = api.get(_config(args, "exclusions")).body
            if args.json:
                print_json(listing)
                return 0
            marks = ["killed"] if listing["killed"] else []
            marks += [f"incident #{i}" for i in listing["incidents"]]
            if marks:
                print(f"{args.key} in {args.env}: {', '.join(marks)}")
            print_table(listing["exclusions"], EXCLUSION_COLUMNS)
            return 0
        if args.lift:
            answer = api.post(
                _config(args, "exclusions", args.lift, "lift"),
                {"reason": args.reason},
                params={"plan": "true"} if args.plan else None,
            )
            return governed(
                args,
                answer,
                lambda config: print(f"{args.key} in {args.env}: exclusion {args.lift} lifted"),
            )
        body = {"audience": args.exclude, "reason": args.reason}
        if args.id:
            body["id"] = args.id
        result = api.post(_config(args, "exclusions"), body).body
    if args.json:
        print_json(result)
        return 0
    exclusion = result["exclusion"]
    print(
        f"{args.key} in {args.env}: {_audience_text(exclusion['clauses'])} gets "
        f"{result.get('off_variation')!r} "
        f"(exclusion {exclusion['id']}, version {result['version']})"
    )
    return 0


def _incidents(args: argparse.Namespace, *more: str) -> str:
    return api_path("projects", args.project, "incidents", *more)


def _print_incident(incident: dict[str, Any]) -> None:
    print_fields(
        [
            ("incident", incident["id"]),
            ("state", incident["state"]),
            ("environment", incident["environment"]),
            ("scope", incident["scope_text"]),
            ("covered", incident["covered"]),
            ("reason", incident["reason"]),
            ("started", f"{incident['started_at']} by {incident['started_by']}"),
            (
                "ended",
                f"{incident['ended_at']} by {incident['ended_by']}: {incident['end_reason']}"
                if incident["ended_at"]
                else None,
            ),
        ]
    )


def run_start(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {
        "environment": args.env,
        "tags": args.tag,
        "min_risk": args.min_risk,
        "owner": args.owner,
        "reason": args.reason,
        "dry_run": args.dry_run,
    }
    with client_for(args) as api:
        result = api.post(_incidents(args), body).body
    if args.json:
        print_json(result)
        return 0
    if args.dry_run:
        falling = result["would_fall_back"]
        print(f"would fall back in {args.env}: {len(falling)} behavior(s); nothing changed")
        columns: list[Column] = [
            ("BEHAVIOR", lambda r: r["flag"]),
            ("RISK", lambda r: r["risk_tier"]),
            ("FALLBACK", lambda r: r["fallback"]),
            ("ALREADY", lambda r: r["already"]),
        ]
        print_table(falling, columns)
        return 0
    print(
        f"incident {result['id']} started in {args.env}: {len(result['covered'])} behavior(s) "
        "serve their fallback; expansions in scope are frozen"
    )
    _print_incident(result)
    return 0


def run_end(args: argparse.Namespace) -> int:
    with client_for(args) as api:
        result = api.post(_incidents(args, str(args.id), "end"), {"reason": args.reason}).body
    if args.json:
        print_json(result)
        return 0
    print(f"incident {result['id']} ended: what it covered serves what it did before")
    return 0


INCIDENT_COLUMNS: list[Column] = [
    ("ID", lambda i: i["id"]),
    ("STATE", lambda i: i["state"]),
    ("ENV", lambda i: i["environment"]),
    ("SCOPE", lambda i: i["scope_text"]),
    ("COVERED", lambda i: len(i["covered"])),
    ("STARTED", lambda i: f"{i['started_at']} {i['started_by']}"),
    ("ENDED", lambda i: f"{i['ended_at']} {i['ended_by']}" if i["ended_at"] else None),
]


def run_list(args: argparse.Namespace) -> int:
    with client_for(args) as api:
        result = api.get(_incidents(args), {"state": args.state, "environment": args.env}).body
    if args.json:
        print_json(result)
    else:
        print_table(result["items"], INCIDENT_COLUMNS)
    return 0


def run_show(args: argparse.Namespace) -> int:
    with client_for(args) as api:
        result = api.get(_incidents(args, str(args.id))).body
    if args.json:
        print_json(result)
    else:
        _print_incident(result)
    return 0
