"""``lockgate projects …`` and ``lockgate envs …``: projects and their environments."""

from __future__ import annotations

import argparse
from typing import Any

from lockgate.cli.approvals_cmds import governed
from lockgate.cli.groups import add_command, add_group, add_reason, json_option
from lockgate.cli.http import api_path, client_for
from lockgate.cli.output import Column, print_fields, print_json, print_table

__all__ = ["register"]

PROJECT_COLUMNS: list[Column] = [
    ("KEY", lambda p: p["key"]),
    ("NAME", lambda p: p.get("name")),
    ("VERSION", lambda p: p.get("version")),
    ("DESCRIPTION", lambda p: p.get("description")),
]
ENV_COLUMNS: list[Column] = [
    ("KEY", lambda e: e["key"]),
    ("NAME", lambda e: e.get("name")),
    ("PROTECTED", lambda e: e.get("protected")),
    ("DEVELOPMENT", lambda e: e.get("development")),
    ("VERSION", lambda e: e.get("version")),
    ("SNAPSHOT", lambda e: e.get("snapshot_version")),
]


def register(commands: Any) -> None:
    _register_projects(add_group(commands, "projects", "list, create and show projects"))
    _register_envs(add_group(commands, "envs", "list, create and protect environments"))
    _register_posture(add_group(commands, "posture", "what changes need, per risk tier"))


def _register_projects(sub: Any) -> None:
    add_command(sub, "list", "list the projects you can see", run_projects_list)
    create = add_command(sub, "create", "create a project (administrators)", run_projects_create)
    create.add_argument("key", metavar="KEY")
    create.add_argument("--name", default="", help="display name (default: the key)")
    create.add_argument("--description", default="")
    show = add_command(sub, "show", "show a project and its environments", run_projects_show)
    show.add_argument("key", metavar="KEY")


def _register_envs(sub: Any) -> None:
    ls = add_command(sub, "list", "list a project's environments in order", run_envs_list)
    ls.add_argument("project", metavar="PROJECT")
    create = add_command(sub, "create", "create an environment", run_envs_create)
    create.add_argument("project", metavar="PROJECT")
    create.add_argument("key", metavar="KEY")
    create.add_argument("--name", default="", help="display name (default: the key)")
    create.add_argument(
        "--protected", action="store_true", help="changes need a reason (and may need approval)"
    )
    create.add_argument(
        "--development",
        action="store_true",
        help="a development environment (the postures' development class)",
    )
    protect = add_command(sub, "protect", "mark an environment protected", run_envs_protect)
    protect.add_argument("project", metavar="PROJECT")
    protect.add_argument("key", metavar="KEY")
    protect.add_argument("--off", action="store_true", help="remove the protection instead")
    add_reason(protect)
    privacy = add_command(
        sub,
        "privacy",
        "show an environment's privacy settings, or propose new ones with --set",
        run_envs_privacy,
    )
    privacy.add_argument("project", metavar="PROJECT")
    privacy.add_argument("key", metavar="KEY")
    privacy.add_argument(
        "--set",
        metavar="JSON|@FILE",
        help='e.g. \'{"private_attributes": ["email"], "rules": {"ip": "hash"}}\' '
        "(recording an attribute more openly needs an approval; docs/privacy.md)",
    )
    add_reason(privacy)


def _register_posture(sub: Any) -> None:
    show = add_command(sub, "show", "a project's posture table", run_posture_show)
    show.add_argument("project", metavar="PROJECT")
    put = add_command(
        sub, "set", "propose a new posture table (applies once approved)", run_posture_set
    )
    put.add_argument("project", metavar="PROJECT")
    put.add_argument(
        "--posture",
        required=True,
        metavar="JSON|@FILE",
        help='e.g. \'{"medium": {"approvals": {"standard": 1}}}\' (tiers left out keep defaults)',
    )
    add_reason(put)


POSTURE_COLUMNS: list[Column] = [
    ("TIER", lambda r: r["tier"]),
    ("DEVELOPMENT", lambda r: r["approvals"]["development"]),
    ("STANDARD", lambda r: r["approvals"]["standard"]),
    ("PROTECTED", lambda r: r["approvals"]["protected"]),
    ("REASON", lambda r: r["reason"]),
]


def run_posture_show(args: argparse.Namespace) -> int:
    with client_for(args) as api:
        view = api.get(api_path("projects", args.project, "posture")).body
    if args.json:
        print_json(view)
        return 0
    origin = "customized" if view.get("customized") else "the defaults"
    print(f"posture of {args.project} ({origin}, version {view['version']}): approvals per class")
    rows = [{"tier": tier, **entry} for tier, entry in view["posture"].items()]
    print_table(rows, POSTURE_COLUMNS)
    return 0


def run_posture_set(args: argparse.Namespace) -> int:
    posture = json_option(args.posture, "--posture", files=True)
    path = api_path("projects", args.project, "posture")
    with client_for(args) as api:
        current = api.get(path)
        answer = api.put(path, {"posture": posture, "reason": args.reason}, version=current.version)

    def unchanged(view: dict[str, Any]) -> None:
        if args.json:
            print_json(view)
        else:
            print(f"posture of {args.project} unchanged (version {view['version']})")

    return governed(args, answer, unchanged)


def run_projects_list(args: argparse.Namespace) -> int:
    with client_for(args) as api:
        page = api.get(api_path("projects")).body
    if args.json:
        print_json(page)
    else:
        print_table(page["items"], PROJECT_COLUMNS)
    return 0


def run_projects_create(args: argparse.Namespace) -> int:
    body = {"key": args.key, "name": args.name, "description": args.description}
    with client_for(args) as api:
        project = api.post(api_path("projects"), body).body
    if args.json:
        print_json(project)
    else:
        print(f"created project {project['key']} (version {project['version']})")
    return 0


def run_projects_show(args: argparse.Namespace) -> int:
    with client_for(args) as api:
        project = api.get(api_path("projects", args.key)).body
        envs = api.get(api_path("projects", args.key, "environments")).body
    if args.json:
        print_json(project | {"environments": envs["items"]})
        return 0
    print_fields(
        [
            ("project", project["key"]),
            ("name", project.get("name")),
            ("description", project.get("description")),
            ("version", project.get("version")),
            ("created", f"{project.get('created_at')} by {project.get('created_by')}"),
        ]
    )
    print()
    print_table(envs["items"], ENV_COLUMNS)
    return 0


def run_envs_list(args: argparse.Namespace) -> int:
    with client_for(args) as api:
        page = api.get(api_path("projects", args.project, "environments")).body
    if args.json:
        print_json(page)
    else:
        print_table(page["items"], ENV_COLUMNS)
    return 0


def run_envs_create(args: argparse.Namespace) -> int:
    body = {
        "key": args.key,
        "name": args.name,
        "protected": args.protected,
        "development": args.development,
    }
    with client_for(args) as api:
        env = api.post(api_path("projects", args.project, "environments"), body).body
    if args.json:
        print_json(env)
    else:
        guard = " (protected)" if env.get("protected") else ""
        print(f"created environment {env['key']} in {args.project}{guard}")
    return 0


def run_envs_privacy(args: argparse.Namespace) -> int:
    path = api_path("projects", args.project, "environments", args.key)
    with client_for(args) as api:
        current = api.get(path)
        if args.set is None:
            print_json(current.body["privacy"])
            return 0
        body = {"privacy": json_option(args.set, "--set", files=True), "reason": args.reason}
        answer = api.patch(path, body, version=current.version)

    def applied(env: dict[str, Any]) -> None:
        if args.json:
            print_json(env)
        else:
            print(f"privacy of {env['key']} in {args.project} (version {env['version']}):")
            print_json(env["privacy"])

    return governed(args, answer, applied)


def run_envs_protect(args: argparse.Namespace) -> int:
    path = api_path("projects", args.project, "environments", args.key)
    body: dict[str, Any] = {"protected": not args.off}
    if args.reason:
        body["reason"] = args.reason
    with client_for(args) as api:
        current = api.get(path)
        answer = api.patch(path, body, version=current.version)

    def applied(env: dict[str, Any]) -> None:
        if args.json:
            print_json(env)
            return
        state = "protected" if env.get("protected") else "not protected"
        print(f"environment {env['key']} in {args.project} is {state} (version {env['version']})")

    return governed(args, answer, applied)
