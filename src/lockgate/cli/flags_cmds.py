"""``lockgate flags …``: behaviors (flags), their per-environment configuration and history.

Configuration changes are version-aware: the command reads the configuration (learning its
version from the ETag), then PATCHes it with ``If-Match``; a concurrent change in between
is refused by the server with 409 (exit 7), never silently overwritten.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from lockgate.cli.approvals_cmds import add_plan, governed
from lockgate.cli.errors import EXIT_FAILURE, EXIT_NOT_FOUND, EXIT_USAGE, CliError
from lockgate.cli.groups import add_command, add_group, add_reason, json_option
from lockgate.cli.http import ApiClient, api_path, client_for
from lockgate.cli.output import Column, counted, print_fields, print_json, print_table, warn

__all__ = ["BUCKET_SPACE", "register", "rollout_split", "serve_text"]

BUCKET_SPACE = 100_000
"""Split weights are in units of 0.001 % and sum to this."""
KINDS = ("mode", "boolean", "string", "number", "json")
RISK_TIERS = ("low", "medium", "high", "restricted")
BEHAVIOR_KINDS = (
    "ui_path", "backend_workflow", "model_route", "prompt", "tool_action", "data_movement",
    "permission_path", "integration",
)  # fmt: skip
ConfigChange = Callable[[dict[str, Any]], dict[str, Any]]


def register(commands: Any) -> None:
    sub = add_group(commands, "flags", "manage flags (behaviors) and their configuration")
    _register_reads(sub)
    _register_create(sub)
    _register_changes(sub)


# --- argument parsing ---------------------------------------------------------------------


def _flag_args(parser: argparse.ArgumentParser, *, env: bool) -> None:
    parser.add_argument("project", metavar="PROJECT")
    parser.add_argument("key", metavar="KEY", help="flag key")
    if env:
        parser.add_argument("--env", required=True, metavar="ENV", help="environment key")


def _register_reads(sub: Any) -> None:
    ls = add_command(sub, "list", "list a project's flags", run_list)
    ls.add_argument("project", metavar="PROJECT")
    ls.add_argument("--env", metavar="ENV", help="show this environment's state")
    ls.add_argument("--tag", help="only flags with this tag")
    ls.add_argument("--risk-tier", choices=RISK_TIERS)
    ls.add_argument("--owner")
    ls.add_argument("--behavior-kind", choices=BEHAVIOR_KINDS, help="only this kind of behavior")
    ls.add_argument("--search", metavar="TEXT", help="text in key, name or description")
    ls.add_argument(
        "--limit", type=int, metavar="N", help="at most N flags (default: all, page by page)"
    )
    _flag_args(add_command(sub, "show", "show a flag in every environment", run_show), env=False)
    history = add_command(sub, "history", "versions of a flag's configuration", run_history)
    _flag_args(history, env=True)
    history.add_argument("--limit", type=int, default=20, metavar="N", help="default 20")
    ev = add_command(sub, "eval", "evaluate a flag on the server for a context", run_eval)
    _flag_args(ev, env=True)
    ev.add_argument("--context", required=True, metavar="JSON", help='e.g. \'{"key": "u1"}\'')
    ev.add_argument("--default", default="null", metavar="JSON", help="served on error (JSON)")


def _register_create(sub: Any) -> None:
    create = add_command(sub, "create", "create a flag (off in every environment)", run_create)
    _flag_args(create, env=False)
    create.add_argument("--kind", required=True, choices=KINDS)
    create.add_argument("--name")
    create.add_argument("--description")
    create.add_argument("--risk-tier", choices=RISK_TIERS)
    create.add_argument("--owner")
    create.add_argument(
        "--behavior-kind", choices=BEHAVIOR_KINDS, help="the kind of generated behavior"
    )
    create.add_argument("--lifecycle", choices=("temporary", "permanent"))
    create.add_argument("--tag", action="append", metavar="TAG", help="repeatable")
    create.add_argument(
        "--variations",
        metavar="JSON",
        help='e.g. \'[{"key": "a", "value": "A"}]\' (default for mode and boolean flags)',
    )
    _client_visible_option(create)
    add_reason(create)
    update = add_command(sub, "update", "change a flag's definition (all environments)", run_update)
    _flag_args(update, env=False)
    update.add_argument("--name")
    update.add_argument("--description")
    update.add_argument("--risk-tier", choices=RISK_TIERS)
    update.add_argument("--owner")
    update.add_argument("--behavior-kind", choices=BEHAVIOR_KINDS)
    update.add_argument("--lifecycle", choices=("temporary", "permanent"))
    update.add_argument("--tag", action="append", metavar="TAG", help="repeatable; replaces")
    _client_visible_option(update)
    add_reason(update)


def _client_visible_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--client-visible",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="whether client SDK keys (browsers, OFREP in front ends) may evaluate the flag",
    )


def _register_changes(sub: Any) -> None:
    for name, help_text, run in (
        ("on", "turn a flag on in one environment", run_on),
        ("off", "turn a flag off in one environment (serves its off variation)", run_off),
    ):
        parser = add_command(sub, name, help_text, run)
        _flag_args(parser, env=True)
        add_reason(parser)
        add_plan(parser)
    rollout = add_command(sub, "set-rollout", "serve a percentage split by default", run_rollout)
    _flag_args(rollout, env=True)
    rollout.add_argument("--variation", required=True, metavar="V", help="variation rolled out")
    rollout.add_argument("--percent", required=True, type=float, metavar="P", help="0-100")
    rollout.add_argument(
        "--other", metavar="VARIATION", help="served to the rest (default: the off variation)"
    )
    add_reason(rollout)
    add_plan(rollout)
    serve = add_command(sub, "serve", "serve one variation by default", run_serve)
    _flag_args(serve, env=True)
    serve.add_argument("--variation", required=True, metavar="V")
    add_reason(serve)
    add_plan(serve)
    configure = add_command(sub, "configure", "change configuration fields", run_configure)
    _flag_args(configure, env=True)
    configure.add_argument(
        "--config",
        required=True,
        metavar="JSON|@FILE",
        help="fields to change, e.g. '{\"rules\": [...]}' (see docs/snapshot-format.md)",
    )
    add_reason(configure)
    add_plan(configure)
    revert = add_command(sub, "revert", "make an earlier version current again", run_revert)
    _flag_args(revert, env=True)
    revert.add_argument("--to", required=True, type=int, metavar="VERSION")
    add_reason(revert)
    add_plan(revert)


# --- paths and rendering ------------------------------------------------------------------


def _flag_path(args: argparse.Namespace, *more: str) -> str:
    return api_path("projects", args.project, "flags", args.key, *more)


def _config_path(args: argparse.Namespace, *more: str) -> str:
    return _flag_path(args, "environments", args.env, *more)


def percent_text(weight: int) -> str:
    return f"{weight / 1000:g}%"


def serve_text(serve: Any) -> str:
    """A default or rule serve in one short phrase: ``observe 20% / off 80%``."""
    if not isinstance(serve, dict):
        return "-"
    if "split" in serve:
        parts = serve.get("split") or []
        return " / ".join(f"{p.get('variation')} {percent_text(p.get('weight', 0))}" for p in parts)
    return str(serve.get("variation", "-"))


def _config_columns() -> list[Column]:
    return [
        ("ON", lambda c: c.get("on")),
        ("VERSION", lambda c: c.get("version")),
        ("DEFAULT", lambda c: serve_text(c.get("default"))),
        ("RULES", lambda c: len(c.get("rules") or [])),
        ("TARGETS", lambda c: len(c.get("targets") or [])),
        ("OFF_VARIATION", lambda c: c.get("off_variation")),
    ]


def _env_states(flag: dict[str, Any]) -> str:
    envs = flag.get("environments") or {}
    return " ".join(f"{key}:{'on' if c.get('on') else 'off'}" for key, c in envs.items())


def _list_columns(env: str | None) -> list[Column]:
    columns: list[Column] = [
        ("KEY", lambda f: f["key"]),
        ("KIND", lambda f: f.get("kind")),
        ("RISK", lambda f: f.get("risk_tier")),
        ("OWNER", lambda f: f.get("owner")),
        ("TAGS", lambda f: f.get("tags")),
    ]
    if env is None:
        return [*columns, ("ENVIRONMENTS", _env_states)]
    return columns + [(header, _in_env(env, read)) for header, read in _config_columns()[:3]]


def _in_env(env: str, read: Callable[[dict[str, Any]], Any]) -> Callable[[dict[str, Any]], Any]:
    return lambda flag: read((flag.get("environments") or {}).get(env) or {})


def _print_config(args: argparse.Namespace, config: dict[str, Any]) -> None:
    if args.json:
        print_json(config)
        return
    state = "ON" if config.get("on") else "OFF"
    print(
        f"flag {args.key} in {args.env}: {state}, default {serve_text(config.get('default'))}, "
        f"version {config.get('version')}"
    )
    policy = config.get("policy")
    if isinstance(policy, dict) and policy.get("direction") in ("reduction", "expansion"):
        how = "applied at once" if policy["direction"] == "reduction" else "allowed directly"
        print(f"  {policy['direction']}: {how} ({policy.get('rule')})")


# --- reads --------------------------------------------------------------------------------


def run_list(args: argparse.Namespace) -> int:
    path = api_path("projects", args.project, "flags")
    params = {
        "environment": args.env,
        "tag": args.tag,
        "risk_tier": args.risk_tier,
        "owner": args.owner,
        "behavior_kind": args.behavior_kind,
        "q": args.search,
    }
    with client_for(args) as api:
        if args.limit is not None:
            page = api.get(path, {**params, "limit": args.limit}).body
        else:
            items = list(api.paged(path, params))
            page = {"items": items, "next_cursor": None, "total": len(items)}
    if args.json:
        print_json(page)
        return 0
    print_table(page["items"], _list_columns(args.env))
    if page.get("next_cursor"):
        total = counted(int(page.get("total") or 0), "flag")
        warn(f"showing {len(page['items'])} of {total} (drop --limit for all)")
    return 0


def run_show(args: argparse.Namespace) -> int:
    with client_for(args) as api:
        flag = api.get(_flag_path(args)).body
    if args.json:
        print_json(flag)
        return 0
    print_fields(
        [
            ("flag", flag["key"]),
            ("name", flag.get("name")),
            ("kind", flag.get("kind")),
            ("behavior kind", flag.get("behavior_kind")),
            ("risk tier", flag.get("risk_tier")),
            ("owner", flag.get("owner")),
            ("lifecycle", flag.get("lifecycle")),
            ("tags", flag.get("tags")),
            ("variations", [v.get("key") for v in flag.get("variations") or []]),
            ("client visible", flag.get("client_visible")),
            ("archived", flag.get("archived")),
            ("version", flag.get("version")),
        ]
    )
    print()
    envs = [{"env": key, **config} for key, config in (flag.get("environments") or {}).items()]
    print_table(envs, [("ENV", lambda c: c["env"]), *_config_columns()])
    return 0


def run_history(args: argparse.Namespace) -> int:
    with client_for(args) as api:
        page = api.get(_config_path(args, "versions"), {"limit": args.limit}).body
    if args.json:
        print_json(page)
        return 0
    print_table(
        page["items"],
        [
            ("VERSION", lambda v: v["version"]),
            ("WHEN", lambda v: v.get("created_at")),
            ("BY", lambda v: v.get("created_by")),
            ("ON", lambda v: (v.get("config") or {}).get("on")),
            ("DEFAULT", lambda v: serve_text((v.get("config") or {}).get("default"))),
            ("REASON", lambda v: v.get("reason")),
        ],
    )
    return 0


def run_eval(args: argparse.Namespace) -> int:
    context = json_option(args.context, "--context")
    if not isinstance(context, dict):
        raise CliError('--context: expected a JSON object such as {"key": "user-1"}')
    default = json_option(args.default, "--default")
    path = api_path("projects", args.project, "environments", args.env, "evaluate")
    with client_for(args) as api:
        body = {"flag": args.key, "context": context, "default": default}
        result = _evaluate(api, path, body)
    if args.json:
        print_json(result)
    else:
        _print_result(result)
    return EXIT_FAILURE if result.get("error_code") else 0


def _evaluate(api: ApiClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    try:
        result: dict[str, Any] = api.post(path, body).body
    except CliError as exc:
        if exc.code == EXIT_NOT_FOUND and exc.message == "Not Found":
            raise CliError(
                f"this lockgate server ({api.url}) has no evaluation endpoint; "
                "evaluate locally with `lockgate eval --snapshot FILE`",
                EXIT_NOT_FOUND,
            ) from None
        raise
    return result


def _print_result(result: dict[str, Any]) -> None:
    reason = str(result.get("reason"))
    if result.get("rule_id"):
        reason += f" (rule {result['rule_id']})"
    if result.get("error_code"):
        reason += f" (error {result['error_code']})"
    print(f"value:     {json.dumps(result.get('value'))}")
    print(f"variation: {result.get('variation') or '-'}")
    print(f"reason:    {reason}")
    version = result.get("flag_version")
    print(f"version:   {version if version is not None else '-'}")


# --- changes ------------------------------------------------------------------------------


def run_create(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"key": args.key, "kind": args.kind}
    optional = {
        "name": args.name,
        "description": args.description,
        "risk_tier": args.risk_tier,
        "owner": args.owner,
        "behavior_kind": args.behavior_kind,
        "lifecycle": args.lifecycle,
        "tags": args.tag,
        "client_visible": args.client_visible,
        "reason": args.reason or None,
    }
    body |= {field: value for field, value in optional.items() if value is not None}
    if args.variations is not None:
        body["variations"] = json_option(args.variations, "--variations")
    with client_for(args) as api:
        flag = api.post(api_path("projects", args.project, "flags"), body).body
    if args.json:
        print_json(flag)
    else:
        variations = ", ".join(str(v.get("key")) for v in flag.get("variations") or [])
        print(f"created flag {flag['key']} ({flag.get('kind')}, {flag.get('risk_tier')} risk)")
        print(f"variations: {variations} — off in every environment")
    return 0


def run_update(args: argparse.Namespace) -> int:
    fields = {
        "name": args.name,
        "description": args.description,
        "risk_tier": args.risk_tier,
        "owner": args.owner,
        "behavior_kind": args.behavior_kind,
        "lifecycle": args.lifecycle,
        "tags": args.tag,
        "client_visible": args.client_visible,
    }
    body: dict[str, Any] = {k: v for k, v in fields.items() if v is not None}
    if not body:
        raise CliError("nothing to change: give at least one option (see --help)", EXIT_USAGE)
    if args.reason:
        body["reason"] = args.reason
    with client_for(args) as api:
        current = api.get(_flag_path(args))
        answer = api.patch(_flag_path(args), body, version=current.version)

    def updated(flag: dict[str, Any]) -> None:
        if args.json:
            print_json(flag)
            return
        changed = ", ".join(sorted(set(body) - {"reason"}))
        print(f"updated flag {flag['key']} ({changed}) — version {flag.get('version')}")

    return governed(args, answer, updated)


def _update_config(args: argparse.Namespace, change: ConfigChange) -> int:
    """Read the configuration, then PATCH ``change(config)`` against its version.

    The answer is governed: applied, a change request waiting for approval (exit 9), or
    with ``--plan`` what the policy would do.
    """
    path = _config_path(args)
    with client_for(args) as api:
        current = api.get(path)
        body = change(current.body)
        if args.reason:
            body["reason"] = args.reason
        answer = api.patch(path, body, version=current.version, params=_plan(args))
    return governed(args, answer, lambda config: _print_config(args, config))


def _plan(args: argparse.Namespace) -> dict[str, str | int | bool | None]:
    return {"plan": True} if getattr(args, "plan", False) else {}


def run_on(args: argparse.Namespace) -> int:
    return _update_config(args, lambda _config: {"on": True})


def run_off(args: argparse.Namespace) -> int:
    return _update_config(args, lambda _config: {"on": False})


def run_serve(args: argparse.Namespace) -> int:
    return _update_config(args, lambda _config: {"default": {"variation": args.variation}})


def run_configure(args: argparse.Namespace) -> int:
    changes = json_option(args.config, "--config", files=True)
    if not isinstance(changes, dict):
        raise CliError('--config: expected a JSON object such as {"on": true}')
    changes.pop("reason", None)
    return _update_config(args, lambda _config: changes)


def run_rollout(args: argparse.Namespace) -> int:
    weight = rollout_weight(args.percent)

    def change(config: dict[str, Any]) -> dict[str, Any]:
        other = args.other or config.get("off_variation")
        if not other:
            raise CliError("--other: the flag has no off variation; name the other variation")
        default = rollout_split(args.variation, weight, other, config.get("default"))
        if not config.get("on"):
            warn(f"flag {args.key} is OFF in {args.env}: the rollout applies once it is on")
        return {"default": default}

    return _update_config(args, change)


def rollout_weight(percent: float) -> int:
    """``percent`` in weight units (0.001 %); refuses values out of range or too precise."""
    weight = round(percent * 1000)
    if not 0 <= percent <= 100:
        raise CliError("--percent: must be between 0 and 100")
    if abs(weight - percent * 1000) > 1e-6:
        raise CliError("--percent: at most 3 decimals (steps of 0.001 %)")
    return weight


def rollout_split(variation: str, weight: int, other: str, current: Any) -> dict[str, Any]:
    """A default serve giving ``variation`` ``weight`` and ``other`` the rest.

    ``variation`` comes first, so it owns the bucket range from 0: raising its percentage
    keeps every context it already had (the rollout is monotonic).
    """
    if variation == other:
        raise CliError(f"--other: must differ from --variation ({variation!r})")
    serve: dict[str, Any] = {
        "split": [
            {"variation": variation, "weight": weight},
            {"variation": other, "weight": BUCKET_SPACE - weight},
        ]
    }
    if isinstance(current, dict) and current.get("bucket_by"):
        serve["bucket_by"] = current["bucket_by"]
    return serve


def run_revert(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"to_version": args.to}
    if args.reason:
        body["reason"] = args.reason
    with client_for(args) as api:
        current = api.get(_config_path(args))
        path = _config_path(args, "revert")
        answer = api.post(path, body, version=current.version, params=_plan(args))
    return governed(args, answer, lambda config: _print_config(args, config))
