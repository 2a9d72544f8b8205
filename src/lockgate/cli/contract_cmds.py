"""``lockgate contract …``: runtime contracts (policy as code).

``schema``, ``validate`` and ``explain`` read files locally — no server needed, fit for CI —
with the same code the API runs; ``plan``, ``apply`` and ``export`` talk to the server.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from lockgate.cli.errors import (
    EXIT_INVALID,
    EXIT_NOT_ALLOWED,
    EXIT_OK,
    EXIT_PENDING,
    EXIT_USAGE,
    CliError,
)
from lockgate.cli.extras import require
from lockgate.cli.groups import add_command, add_group, add_reason
from lockgate.cli.http import api_path, client_for
from lockgate.cli.output import print_json, print_table

__all__ = ["register"]

FORMATS = ("text", "json", "github")


def register(commands: Any) -> None:
    sub = add_group(commands, "contract", "runtime contracts: validate, plan, apply, explain")
    add_command(sub, "schema", "print the JSON Schema of contract files", run_schema)
    validate = add_command(
        sub, "validate", "check contract files (schema and meaning), locally", run_validate
    )
    validate.add_argument("files", nargs="+", metavar="FILE")
    validate.add_argument(
        "--format",
        choices=FORMATS,
        default="text",
        help="text (FILE:LINE:COLUMN: …), json, or github (workflow annotations)",
    )
    plan = add_command(
        sub, "plan", "the changes applying would make, and what policy decides", run_plan
    )
    _file_and_project(plan)
    plan.add_argument("--env", metavar="ENV", help="plan this environment only")
    apply = add_command(
        sub, "apply", "apply a contract through the governed change path", run_apply
    )
    _file_and_project(apply)
    add_reason(apply)
    explain = add_command(
        sub, "explain", "trace every line to what enforces it (locally)", run_explain
    )
    explain.add_argument("file", metavar="FILE")
    export = add_command(sub, "export", "the contract for an existing behavior", run_export)
    export.add_argument("behavior", metavar="BEHAVIOR", help="the flag key")
    export.add_argument("--project", required=True, metavar="PROJECT")


def _file_and_project(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE")
    parser.add_argument("--project", required=True, metavar="PROJECT")


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"{path}: cannot read: {exc}", EXIT_USAGE) from None


def _local() -> Any:
    require("cli", "yaml")
    from lockgate.control import contract_yaml

    return contract_yaml


def run_schema(args: argparse.Namespace) -> int:
    from lockgate.contracts import contract_schema

    print_json(contract_schema())
    return EXIT_OK


def _escape(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def run_validate(args: argparse.Namespace) -> int:
    files = _local()
    results = [files.check_contract(_read(path), path) for path in args.files]
    fmt = "json" if args.json else args.format
    if fmt == "json":
        print_json(results)
    for result in results if fmt != "json" else []:
        for p in result["problems"]:
            where = f"{result['file']}:{p['line']}:{p['column']}"
            if fmt == "github":
                print(
                    f"::error file={result['file']},line={p['line']},col={p['column']},"
                    f"title=lockgate contract::{_escape(p['field'] + ': ' + p['message'])}"
                )
            else:
                print(f"{where}: error: {p['field']}: {p['message']}")
        if fmt == "text" and result["valid"]:
            print(f"{result['file']}: ok (behavior {result['behavior'] or '-'})")
    return EXIT_OK if all(r["valid"] for r in results) else EXIT_INVALID


def _load_or_fail(files: Any, path: str) -> Any:
    from lockgate.errors import InvalidInput

    try:
        return files.explain_contract(_read(path), path)
    except InvalidInput as exc:
        for p in exc.problems:
            print(f"{path}:{p.line}:{p.column}: error: {p.field}: {p.message}", file=sys.stderr)
        raise CliError(f"{path}: invalid contract", EXIT_INVALID) from None


def run_explain(args: argparse.Namespace) -> int:
    explained = _load_or_fail(_local(), args.file)
    if args.json:
        print_json(explained)
        return EXIT_OK
    print_table(
        explained["lines"],
        [
            ("LINE", lambda t: t["line"]),
            ("STATUS", lambda t: t["status"]),
            ("FIELD", lambda t: t["field"]),
            ("ENFORCED BY", lambda t: t["by"]),
        ],
    )
    missing = explained["unenforced"]
    if missing:
        lines = ", ".join(str(t["line"]) for t in missing)
        print(f"\n{len(missing)} line(s) nothing enforces: {lines}")
    return EXIT_OK


def _body(args: argparse.Namespace) -> dict[str, Any]:
    return {"source": _read(args.file), "file": Path(args.file).name}


def _print_steps(steps: list[dict[str, Any]]) -> None:
    print_table(
        steps,
        [
            ("STEP", lambda s: s["step"]),
            ("TARGET", lambda s: s["target"]),
            ("OUTCOME", lambda s: s["outcome"]),
            ("WHY", _why),
        ],
    )


def _why(step: dict[str, Any]) -> str:
    parts = []
    if step.get("rule"):
        parts.append(str(step["rule"]))
    if step.get("change_request"):
        parts.append(f"change request {step['change_request']}")
    if step.get("changes"):
        parts.append("changes " + ", ".join(sorted(step["changes"])))
    return "; ".join(parts) or "-"


def run_plan(args: argparse.Namespace) -> int:
    body = _body(args) | {"environment": args.env}
    with client_for(args) as api:
        plan = api.post(api_path("projects", args.project, "contracts", "plan"), body).body
    if args.json:
        print_json(plan)
        return EXIT_OK
    _print_steps(plan["steps"])
    print(f"\n{plan['changes']} change(s) for behavior {plan['behavior']}")
    return EXIT_OK


def run_apply(args: argparse.Namespace) -> int:
    body = _body(args) | {"reason": args.reason}
    with client_for(args) as api:
        result = api.post(api_path("projects", args.project, "contracts", "apply"), body).body
    if args.json:
        print_json(result)
    else:
        _print_steps(result["steps"])
        if not result["changed"]:
            print("\nnothing changed: the live state already matches the contract")
        for request in result["pending"]:
            print(f"change request {request} waits for approval: lockgate approvals show {request}")
    if result["refused"]:
        return EXIT_NOT_ALLOWED
    return EXIT_PENDING if result["pending"] else EXIT_OK


def run_export(args: argparse.Namespace) -> int:
    path = api_path("projects", args.project, "flags", args.behavior, "contract")
    with client_for(args) as api:
        exported = api.get(path).body
    if args.json:
        print_json(exported)
    else:
        sys.stdout.write(exported["contract"])
    return EXIT_OK
