"""Guardrails and staged rollouts: ``lockgate guardrails list|show|set|delete`` and
``lockgate rollout show|set|delete|pause|resume|advance``.

Creating a guardrail and pausing a rollout apply at once; changing or deleting a
guardrail, setting a rollout plan, resuming and advancing one are governed (they may
answer with a change request: exit 9).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from lockgate.cli.approvals_cmds import add_plan, governed
from lockgate.cli.errors import CliError
from lockgate.cli.groups import add_command, add_group
from lockgate.cli.http import api_path, client_for
from lockgate.cli.output import Column, print_fields, print_json, print_table

__all__ = ["register"]

OPTIONS = (
    ("aggregation", str, "rate (per exposure, default), mean, sum or count"),
    ("comparison", str, "regression (against the stable variation) or absolute"),
    ("threshold", float, "regression: tolerated relative margin; absolute: the value or cap"),
    ("direction", str, "higher_is_worse (default) or lower_is_worse"),
    ("min_sample", int, "samples per arm before it decides (default 1000)"),
    ("window", str, "a duration such as 15m, 1h, 1d (default 1h)"),
    ("action", str, "pause, reduce, fallback, kill, exclude, require_approval, notify"),
    ("per", str, "a cohort attribute (account): a cap per value of it"),
    ("variation", str, "the generated variation (default: the rollout's)"),
    ("stable", str, "the stable variation (default: the fallback)"),
    ("alpha", float, "false alarm level (default 0.05)"),
)


def _where(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("project", metavar="PROJECT")
    parser.add_argument("key", metavar="BEHAVIOR")
    parser.add_argument("--env", required=True, metavar="ENV")


def register(commands: Any) -> None:
    group = add_group(commands, "guardrails", "guardrails of a behavior in one environment")
    ls = add_command(group, "list", "guardrails with their state and evidence", run_list)
    _where(ls)
    show = add_command(group, "show", "one guardrail: definition and last evaluation", run_show)
    _where(show)
    show.add_argument("name", metavar="GUARDRAIL")
    put = add_command(group, "set", "create or replace a guardrail", run_set)
    _where(put)
    put.add_argument("name", metavar="GUARDRAIL")
    put.add_argument("--metric", required=True, help="the tracked metric")
    for name, kind, text in OPTIONS:
        put.add_argument("--" + name.replace("_", "-"), type=kind, help=text)
    put.add_argument("--reason", default="", help="why (audited)")
    add_plan(put)
    rm = add_command(group, "delete", "delete a guardrail (governed)", run_delete)
    _where(rm)
    rm.add_argument("name", metavar="GUARDRAIL")
    rm.add_argument("--reason", default="", help="why (audited)")

    rollout = add_group(commands, "rollout", "a behavior's staged rollout in one environment")
    rshow = add_command(rollout, "show", "the plan, its stage and why it holds", run_plan_show)
    _where(rshow)
    rset = add_command(rollout, "set", "create or replace the plan from a JSON file", run_plan_set)
    _where(rset)
    rset.add_argument("--file", required=True, help="the plan as JSON (docs/guardrails.md)")
    rset.add_argument("--reason", default="", help="why (audited)")
    add_plan(rset)
    for name, text, runner in (
        ("pause", "stop automatic advances (at once)", run_pause),
        ("resume", "let the system advance again (governed)", run_resume),
        ("advance", "advance to the next stage yourself (governed)", run_advance),
        ("delete", "delete the plan (the configuration stays)", run_plan_delete),
    ):
        sub = add_command(rollout, name, text, runner)
        _where(sub)
        sub.add_argument("--reason", default="", help="why (audited)")


def _path(args: argparse.Namespace, *more: str) -> str:
    return api_path("projects", args.project, "flags", args.key, "environments", args.env, *more)


def _interval(evaluation: dict[str, Any] | None) -> str:
    if not evaluation or evaluation.get("interval") is None:
        return "-"
    low, high = evaluation["interval"]
    return f"[{low:.4g}, {high:.4g}]"


COLUMNS: list[Column] = [
    ("GUARDRAIL", lambda g: g["key"]),
    ("METRIC", lambda g: f"{g['aggregation']} of {g['metric']}"),
    ("STATE", lambda g: (g.get("evaluation") or {}).get("state", g["state"])),
    ("ESTIMATE", lambda g: (g.get("evaluation") or {}).get("estimate")),
    ("INTERVAL", lambda g: _interval(g.get("evaluation"))),
    ("SAMPLES", lambda g: json.dumps((g.get("evaluation") or {}).get("samples") or {})),
    ("ACTION", lambda g: g["action"]),
]


def run_list(args: argparse.Namespace) -> int:
    with client_for(args) as api:
        listing = api.get(_path(args, "guardrails")).body
    if args.json:
        print_json(listing)
    else:
        print_table(listing["items"], COLUMNS)
    return 0


def _show(guardrail: dict[str, Any]) -> None:
    evaluation = guardrail.get("evaluation") or {}
    print_fields(
        [
            ("guardrail", guardrail["key"]),
            ("metric", f"{guardrail['aggregation']} of {guardrail['metric']}"),
            ("comparison", f"{guardrail['comparison']} ({guardrail['direction']})"),
            ("threshold", guardrail["threshold"]),
            ("window", f"{guardrail['window']}s"),
            ("min sample", guardrail["min_sample"]),
            ("action", guardrail["action"]),
            ("state", evaluation.get("state", guardrail["state"])),
            ("decision", evaluation.get("decision", "-")),
            ("evaluated", guardrail.get("evaluated_at") or "-"),
        ]
    )


def run_show(args: argparse.Namespace) -> int:
    with client_for(args) as api:
        guardrail = api.get(_path(args, "guardrails", args.name)).body
    if args.json:
        print_json(guardrail)
    else:
        _show(guardrail)
    return 0


def run_set(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"metric": args.metric, "reason": args.reason}
    for name, _kind, _text in OPTIONS:
        value = getattr(args, name)
        if value is not None:
            body[name] = value
    with client_for(args) as api:
        answer = api.put(
            _path(args, "guardrails", args.name),
            body,
            params={"plan": "true"} if args.plan else None,
        )
    return governed(args, answer, _show)


def run_delete(args: argparse.Namespace) -> int:
    with client_for(args) as api:
        answer = api.delete(_path(args, "guardrails", args.name), reason=args.reason)
    return governed(args, answer, lambda _r: print(f"guardrail {args.name} of {args.key} deleted"))


def _plan_text(plan: dict[str, Any]) -> None:
    stages = ", ".join(
        f"{'>' if i == plan['stage'] else ''}{s['name']}{' (approval)' if s['approval'] else ''}"
        for i, s in enumerate(plan["stages"])
    )
    print_fields(
        [
            ("rollout", f"{plan['flag']} in {plan['environment']}: {plan['variation']}"),
            ("stages", stages),
            ("stage", f"{plan['stage']} ({plan.get('stage_name') or 'not started'})"),
            (
                "status",
                plan["status"] + (" (held for approval)" if plan["require_approval"] else ""),
            ),
            ("since", plan["stage_started_at"]),
        ]
    )
    reasons = (plan.get("last_step") or {}).get("reasons") or []
    for reason in reasons:
        print(f"  holds: {reason}")


def run_plan_show(args: argparse.Namespace) -> int:
    with client_for(args) as api:
        plan = api.get(_path(args, "rollout")).body
    if args.json:
        print_json(plan)
    else:
        _plan_text(plan)
    return 0


def run_plan_set(args: argparse.Namespace) -> int:
    try:
        body = json.loads(Path(args.file).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CliError(f"--file: cannot read a JSON plan from {args.file}: {exc}") from exc
    if not isinstance(body, dict):
        raise CliError("--file: the plan must be a JSON object")
    if args.reason:
        body["reason"] = args.reason
    with client_for(args) as api:
        answer = api.put(
            _path(args, "rollout"), body, params={"plan": "true"} if args.plan else None
        )
    return governed(args, answer, _plan_text)


def _post(args: argparse.Namespace, verb: str) -> Any:
    with client_for(args) as api:
        return api.post(_path(args, "rollout", verb), {"reason": args.reason})


def run_pause(args: argparse.Namespace) -> int:
    return governed(args, _post(args, "pause"), _plan_text)


def run_resume(args: argparse.Namespace) -> int:
    return governed(args, _post(args, "resume"), _plan_text)


def run_advance(args: argparse.Namespace) -> int:
    return governed(args, _post(args, "advance"), lambda r: _plan_text(r["plan"]))


def run_plan_delete(args: argparse.Namespace) -> int:
    with client_for(args) as api:
        answer = api.delete(_path(args, "rollout"), reason=args.reason)
    return governed(args, answer, lambda _r: print(f"rollout plan of {args.key} deleted"))
