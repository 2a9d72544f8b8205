"""``lockgate webhook …``: subscriptions of a project, their deliveries and replays."""

from __future__ import annotations

import argparse
from typing import Any

from lockgate.cli.groups import add_command, add_group, add_reason
from lockgate.cli.http import api_path, client_for
from lockgate.cli.output import Column, print_fields, print_json, print_table

__all__ = ["register"]

WEBHOOK_COLUMNS: list[Column] = [
    ("KEY", lambda w: w["key"]),
    ("URL", lambda w: w["url"]),
    ("EVENTS", lambda w: ",".join(w.get("event_types") or [])),
    ("ENVIRONMENTS", lambda w: ",".join(w.get("environments") or []) or "*"),
    ("ENABLED", lambda w: w.get("enabled")),
    ("VERSION", lambda w: w.get("version")),
]
DELIVERY_COLUMNS: list[Column] = [
    ("ID", lambda d: d["id"]),
    ("EVENT", lambda d: d["event_type"]),
    ("STATE", lambda d: d["state"]),
    ("ATTEMPTS", lambda d: d["attempts"]),
    ("LAST STATUS", lambda d: d.get("last_status")),
    ("LAST ERROR", lambda d: d.get("last_error")),
    ("CREATED", lambda d: d["created_at"]),
]


def register(commands: Any) -> None:
    sub = add_group(commands, "webhook", "subscribe URLs to events; list and replay deliveries")
    ls = add_command(sub, "list", "list a project's webhook subscriptions", run_list)
    ls.add_argument("project", metavar="PROJECT")
    show = add_command(sub, "show", "show a subscription", run_show)
    _key_args(show)
    create = add_command(sub, "create", "subscribe a URL (prints its secret once)", run_create)
    _key_args(create)
    create.add_argument("--endpoint", required=True, help="http(s) URL of the receiver")
    _field_options(create, events_required=True)
    add_reason(create)
    update = add_command(sub, "update", "change a subscription", run_update)
    _key_args(update)
    update.add_argument("--endpoint", help="http(s) URL of the receiver")
    _field_options(update, events_required=False)
    toggle = update.add_mutually_exclusive_group()
    toggle.add_argument("--enable", dest="enabled", action="store_true", default=None)
    toggle.add_argument("--disable", dest="enabled", action="store_false")
    add_reason(update)
    delete = add_command(sub, "delete", "delete a subscription and its deliveries", run_delete)
    _key_args(delete)
    add_reason(delete)
    rotate = add_command(
        sub, "rotate-secret", "new secret; the old one signs for a while", run_rotate
    )
    _key_args(rotate)
    add_reason(rotate)
    deliveries = add_command(sub, "deliveries", "a subscription's deliveries", run_deliveries)
    _key_args(deliveries)
    deliveries.add_argument("--state", choices=["pending", "delivered", "failed"])
    replay = add_command(sub, "replay", "send failed deliveries again", run_replay)
    _key_args(replay)
    which = replay.add_mutually_exclusive_group(required=True)
    which.add_argument("--delivery", type=int, metavar="ID", help="one failed delivery")
    which.add_argument("--all-failed", action="store_true", help="every failed delivery")
    add_reason(replay)


def _key_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("project", metavar="PROJECT")
    parser.add_argument("key", metavar="KEY", help="subscription key")


def _field_options(parser: argparse.ArgumentParser, *, events_required: bool) -> None:
    parser.add_argument(
        "--event",
        dest="events",
        action="append",
        required=events_required,
        metavar="TYPE",
        help="an event type (repeat; '*' for all; see docs/webhooks.md)",
    )
    parser.add_argument(
        "--env",
        dest="envs",
        action="append",
        metavar="ENV",
        help="only events of this environment (repeat; default: every environment)",
    )
    parser.add_argument("--description")


def _path(args: argparse.Namespace, *more: str) -> str:
    return api_path("projects", args.project, "webhooks", *more)


def _body(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for name, value in (
        ("url", args.endpoint),
        ("event_types", args.events),
        ("environments", args.envs),
        ("description", args.description),
        ("enabled", getattr(args, "enabled", None)),
    ):
        if value is not None:
            body[name] = value
    if args.reason:
        body["reason"] = args.reason
    return body


def _print_webhook(webhook: dict[str, Any]) -> None:
    print_fields(
        [
            ("webhook", webhook["key"]),
            ("url", webhook["url"]),
            ("events", ", ".join(webhook["event_types"])),
            ("environments", ", ".join(webhook["environments"]) or "every environment"),
            ("enabled", webhook["enabled"]),
            ("disabled because", webhook.get("disabled_reason") or None),
            ("previous secret until", webhook.get("previous_secret_expires_at")),
            ("version", webhook["version"]),
        ]
    )


def run_list(args: argparse.Namespace) -> int:
    with client_for(args) as api:
        page = api.get(_path(args)).body
    if args.json:
        print_json(page)
    else:
        print_table(page["items"], WEBHOOK_COLUMNS)
    return 0


def run_show(args: argparse.Namespace) -> int:
    with client_for(args) as api:
        webhook = api.get(_path(args, args.key)).body
    if args.json:
        print_json(webhook)
    else:
        _print_webhook(webhook)
    return 0


def _print_secret(webhook: dict[str, Any]) -> None:
    print(f"secret: {webhook['secret']}")
    print("(shown once: store it where the receiver reads it)")


def run_create(args: argparse.Namespace) -> int:
    with client_for(args) as api:
        webhook = api.post(_path(args), {"key": args.key, **_body(args)}).body
    if args.json:
        print_json(webhook)
    else:
        print(f"created webhook {webhook['key']} in {args.project}")
        _print_secret(webhook)
    return 0


def run_update(args: argparse.Namespace) -> int:
    with client_for(args) as api:
        current = api.get(_path(args, args.key))
        webhook = api.patch(_path(args, args.key), _body(args), version=current.version).body
    if args.json:
        print_json(webhook)
    else:
        _print_webhook(webhook)
    return 0


def run_delete(args: argparse.Namespace) -> int:
    with client_for(args) as api:
        current = api.get(_path(args, args.key))
        api.delete(_path(args, args.key), version=current.version, reason=args.reason)
    if args.json:
        print_json({"deleted": args.key})
    else:
        print(f"deleted webhook {args.key} from {args.project}")
    return 0


def run_rotate(args: argparse.Namespace) -> int:
    with client_for(args) as api:
        webhook = api.post(_path(args, args.key, "rotate-secret"), {"reason": args.reason}).body
    if args.json:
        print_json(webhook)
    else:
        print(
            f"rotated the secret of {args.key}; the previous one signs until "
            f"{webhook['previous_secret_expires_at']}"
        )
        _print_secret(webhook)
    return 0


def run_deliveries(args: argparse.Namespace) -> int:
    with client_for(args) as api:
        items = list(api.paged(_path(args, args.key, "deliveries"), {"state": args.state}))
    if args.json:
        print_json({"items": items, "next_cursor": None, "total": len(items)})
    else:
        print_table(items, DELIVERY_COLUMNS)
    return 0


def run_replay(args: argparse.Namespace) -> int:
    if args.all_failed:
        path = _path(args, args.key, "replay-failed")
    else:
        path = _path(args, args.key, "deliveries", str(args.delivery), "replay")
    with client_for(args) as api:
        result = api.post(path, {"reason": args.reason}).body
    if args.json:
        print_json(result)
    else:
        print(f"queued {result['replayed']} delivery(ies) again")
    return 0
