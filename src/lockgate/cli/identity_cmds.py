"""``lockgate users|members|tokens|sdk-keys …``: who may do what, and with which secret."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from lockgate.cli.errors import EXIT_FAILURE, CliError
from lockgate.cli.groups import add_command, add_group, add_reason
from lockgate.cli.http import ApiClient, api_path, client_for, server_url
from lockgate.cli.output import Column, print_json, print_table

__all__ = ["register"]

ROLES = ("viewer", "editor", "approver", "admin")
SECRET_WARNING = "store it now: it is shown once and cannot be read back"  # noqa: S105

USER_COLUMNS: list[Column] = [
    ("USERNAME", lambda u: u["username"]),
    ("NAME", lambda u: u.get("display_name")),
    ("KIND", lambda u: u.get("kind")),
    ("ADMIN", lambda u: u.get("is_admin")),
    ("DISABLED", lambda u: u.get("disabled")),
]
GRANT_COLUMNS: list[Column] = [
    ("USERNAME", lambda g: g["username"]),
    ("KIND", lambda g: g.get("kind")),
    ("ROLE", lambda g: g.get("role")),
    ("ENVIRONMENT", lambda g: g.get("environment") or "(all)"),
    ("DISABLED", lambda g: g.get("disabled")),
]
TOKEN_COLUMNS: list[Column] = [
    ("PREFIX", lambda t: t.get("prefix")),
    ("NAME", lambda t: t.get("name")),
    ("USER", lambda t: t.get("user")),
    ("PROJECT", lambda t: t.get("project")),
    ("MAX_ROLE", lambda t: t.get("max_role")),
    ("EXPIRES", lambda t: t.get("expires_at")),
    ("REVOKED", lambda t: t.get("revoked_at")),
    ("LAST_USED", lambda t: t.get("last_used_at")),
]
SDK_KEY_COLUMNS: list[Column] = [
    ("PREFIX", lambda k: k.get("prefix")),
    ("KIND", lambda k: k.get("kind")),
    ("NAME", lambda k: k.get("name")),
    ("CREATED", lambda k: k.get("created_at")),
    ("REVOKED", lambda k: k.get("revoked_at")),
    ("LAST_USED", lambda k: k.get("last_used_at")),
]


def register(commands: Any) -> None:
    _register_users(add_group(commands, "users", "list, create and disable users"))
    _register_members(add_group(commands, "members", "grant and remove project roles"))
    _register_tokens(add_group(commands, "tokens", "create, list and revoke API tokens"))
    _register_sdk_keys(add_group(commands, "sdk-keys", "SDK keys of an environment"))
    login = add_command(
        commands,
        "login",
        "log in with a password and print a new API token for yourself (shown once)",
        run_login,
    )
    login.add_argument("username", metavar="USERNAME")
    login.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin (the default)"
    )
    login.add_argument("--name", default="cli", help="the new token's name (default: cli)")
    login.add_argument("--expires-in-days", type=int, default=30, metavar="N", help="default 30")


# --- argument parsing ---------------------------------------------------------------------


def _register_users(sub: Any) -> None:
    add_command(sub, "list", "list users", run_users_list)
    create = add_command(sub, "create", "create a user (administrators)", run_users_create)
    create.add_argument("username", metavar="USERNAME")
    create.add_argument("--display-name", default="")
    how = create.add_mutually_exclusive_group()
    how.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    how.add_argument(
        "--service", action="store_true", help="a service account: no password, tokens only"
    )
    add_reason(create)
    disable = add_command(sub, "disable", "disable a user and their tokens", run_users_disable)
    disable.add_argument("username", metavar="USERNAME")
    add_reason(disable)


def _register_members(sub: Any) -> None:
    ls = add_command(sub, "list", "list a project's members", run_members_list)
    ls.add_argument("project", metavar="PROJECT")
    grant = add_command(sub, "set", "give a user a role in a project", run_members_set)
    _member_args(grant)
    grant.add_argument("role", metavar="ROLE", choices=ROLES, help=" | ".join(ROLES))
    grant.add_argument("--env", metavar="ENV", help="only in this environment")
    add_reason(grant)
    remove = add_command(sub, "remove", "remove a user's role in a project", run_members_remove)
    _member_args(remove)
    remove.add_argument("--env", metavar="ENV", help="only the grant for this environment")
    add_reason(remove)


def _member_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("project", metavar="PROJECT")
    parser.add_argument("username", metavar="USERNAME")


def _register_tokens(sub: Any) -> None:
    create = add_command(sub, "create", "create an API token (shown once)", run_tokens_create)
    create.add_argument("name", metavar="NAME")
    create.add_argument("--project", metavar="PROJECT", help="usable only in this project")
    create.add_argument("--max-role", choices=ROLES, help="never more than this role")
    create.add_argument(
        "--automation",
        action="store_true",
        help="a token for CI or a coding agent: plans and proposes, never approves",
    )
    create.add_argument("--expires-in-days", type=int, metavar="N")
    add_reason(create)
    add_command(sub, "list", "list your API tokens (never their secrets)", run_tokens_list)
    revoke = add_command(sub, "revoke", "revoke an API token", run_tokens_revoke)
    revoke.add_argument("prefix", metavar="PREFIX", help="the token's prefix (from `list`)")
    add_reason(revoke)


def _register_sdk_keys(sub: Any) -> None:
    ls = add_command(sub, "list", "list an environment's SDK keys", run_sdk_keys_list)
    _env_args(ls)
    create = add_command(sub, "create", "create an SDK key (shown once)", run_sdk_keys_create)
    _env_args(create)
    create.add_argument(
        "--kind",
        required=True,
        choices=("server", "client"),
        help="server: rulesets for local evaluation; client: evaluated client-visible flags",
    )
    create.add_argument("--name", default="")
    add_reason(create)
    revoke = add_command(sub, "revoke", "revoke an SDK key", run_sdk_keys_revoke)
    _env_args(revoke)
    revoke.add_argument("prefix", metavar="PREFIX")
    add_reason(revoke)


def _env_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("project", metavar="PROJECT")
    parser.add_argument("env", metavar="ENV")


# --- users and members --------------------------------------------------------------------


def _with_reason(body: dict[str, Any], reason: str) -> dict[str, Any]:
    return body | {"reason": reason} if reason else body


def run_users_list(args: argparse.Namespace) -> int:
    with client_for(args) as api:
        items = list(api.paged(api_path("users")))
    _print_list(args, items, USER_COLUMNS)
    return 0


def run_users_create(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {
        "username": args.username,
        "display_name": args.display_name,
        "kind": "service" if args.service else "human",
    }
    if args.password_stdin:
        body["password"] = _read_password()
    with client_for(args) as api:
        user = api.post(api_path("users"), _with_reason(body, args.reason)).body
    if args.json:
        print_json(user)
    else:
        print(f"created {user.get('kind', 'human')} user {user['username']}")
    return 0


def run_login(args: argparse.Namespace) -> int:
    """Password → session → an API token of the user's own; the session is ended at once."""
    password = _read_password()
    body = {"name": args.name, "expires_in_days": args.expires_in_days}
    # Never the caller's token (LOCKGATE_TOKEN may hold someone else's): only the session.
    with ApiClient(server_url(args), "") as api:
        session = api.post(
            api_path("auth", "login"), {"username": args.username, "password": password}
        ).body
        csrf = {"X-CSRF-Token": str(session.get("csrf_token", ""))}
        created = api.request("POST", api_path("tokens"), body=body, headers=csrf).body
        api.request("POST", api_path("auth", "logout"), headers=csrf)
    _print_secret(args, created, "API token")
    return 0


def _read_password() -> str:
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise CliError("--password-stdin: no password on standard input")
    return password


def run_users_disable(args: argparse.Namespace) -> int:
    path = api_path("users", args.username)
    with client_for(args) as api:
        current = api.get(path)
        body = _with_reason({"disabled": True}, args.reason)
        user = api.patch(path, body, version=current.version).body
    if args.json:
        print_json(user)
    else:
        print(f"disabled user {user['username']}: their sessions and tokens no longer work")
    return 0


def run_members_list(args: argparse.Namespace) -> int:
    with client_for(args) as api:
        members = list(api.paged(api_path("projects", args.project, "members")))
    if args.json:
        print_json({"items": members, "next_cursor": None, "total": len(members)})
    else:
        print_table(_grants(members), GRANT_COLUMNS)
    return 0


def _grants(members: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per grant, whether the server lists grants or members with their ``grants``."""
    rows: list[dict[str, Any]] = []
    for member in members:
        grants = member.get("grants")
        rows += [member | grant for grant in grants] if isinstance(grants, list) else [member]
    return rows


def run_members_set(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"role": args.role}
    if args.env:
        body["environment"] = args.env
    path = api_path("projects", args.project, "members", args.username)
    with client_for(args) as api:
        member = api.put(path, _with_reason(body, args.reason)).body
    if args.json:
        print_json(member)
    else:
        where = f"{args.project}/{args.env}" if args.env else args.project
        print(f"{args.username} is {args.role} in {where}")
    return 0


def run_members_remove(args: argparse.Namespace) -> int:
    path = api_path("projects", args.project, "members", args.username)
    with client_for(args) as api:
        api.delete(path, {"environment": args.env}, reason=args.reason)
    where = f"{args.project}/{args.env}" if args.env else args.project
    if args.json:
        print_json({"removed": args.username, "project": args.project, "environment": args.env})
    else:
        print(f"removed {args.username} from {where}")
    return 0


# --- secrets: API tokens and SDK keys -----------------------------------------------------


def _print_secret(args: argparse.Namespace, created: dict[str, Any], what: str) -> None:
    """The new secret, once, with the warning to store it (on stderr, so scripts can pipe)."""
    secret = next((created[f] for f in ("token", "key", "secret") if created.get(f)), None)
    if not isinstance(secret, str):
        raise CliError(f"the server's answer carries no {what}", EXIT_FAILURE)
    print(f"lockgate: {what} created — {SECRET_WARNING}", file=sys.stderr)
    if args.json:
        print_json(created)
    else:
        print(secret)


def run_tokens_create(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"name": args.name}
    options = {
        "project": args.project,
        "max_role": args.max_role,
        "kind": "automation" if args.automation else None,
        "expires_in_days": args.expires_in_days,
    }
    body |= {field: value for field, value in options.items() if value is not None}
    with client_for(args) as api:
        created = api.post(api_path("tokens"), _with_reason(body, args.reason)).body
    _print_secret(args, created, "API token")
    return 0


def run_tokens_list(args: argparse.Namespace) -> int:
    with client_for(args) as api:
        items = list(api.paged(api_path("tokens")))
    _print_list(args, items, TOKEN_COLUMNS)
    return 0


def run_tokens_revoke(args: argparse.Namespace) -> int:
    with client_for(args) as api:
        token = api.delete(api_path("tokens", args.prefix), reason=args.reason).body
    _print_done(args, token, f"revoked API token {args.prefix}")
    return 0


def _sdk_keys_path(args: argparse.Namespace, *more: str) -> str:
    return api_path("projects", args.project, "environments", args.env, "sdk-keys", *more)


def run_sdk_keys_list(args: argparse.Namespace) -> int:
    with client_for(args) as api:
        items = list(api.paged(_sdk_keys_path(args)))
    _print_list(args, items, SDK_KEY_COLUMNS)
    return 0


def run_sdk_keys_create(args: argparse.Namespace) -> int:
    body = _with_reason({"kind": args.kind, "name": args.name}, args.reason)
    with client_for(args) as api:
        created = api.post(_sdk_keys_path(args), body).body
    _print_secret(args, created, f"{args.kind} SDK key")
    return 0


def run_sdk_keys_revoke(args: argparse.Namespace) -> int:
    with client_for(args) as api:
        key = api.delete(_sdk_keys_path(args, args.prefix), reason=args.reason).body
    _print_done(args, key, f"revoked SDK key {args.prefix}")
    return 0


# --- rendering ----------------------------------------------------------------------------


def _print_list(
    args: argparse.Namespace, items: list[dict[str, Any]], columns: list[Column]
) -> None:
    if args.json:
        print_json({"items": items, "next_cursor": None, "total": len(items)})
    else:
        print_table(items, columns)


def _print_done(args: argparse.Namespace, value: dict[str, Any], message: str) -> None:
    if args.json:
        print_json(value)
    else:
        print(message)
