"""``lockgate audit tail`` and ``lockgate audit list``: read the audit log over HTTP.

The ``audit`` group itself belongs to :mod:`lockgate.cli.audit_cmds` (verify, export and
checkpoints, run against the database); it attaches these two commands by calling
:func:`add_http_audit_commands` with its subparsers.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from time import sleep
from typing import Any

from lockgate.cli.errors import EXIT_INTERRUPTED, CliError
from lockgate.cli.groups import add_command
from lockgate.cli.http import ApiClient, Params, api_path, client_for
from lockgate.cli.output import Column, print_json, print_table
from lockgate.contracts.model import BEHAVIOR_KINDS

__all__ = ["add_http_audit_commands", "entry_line"]

PAGE = 500
MIN_INTERVAL = 0.1

FILTERS = (
    "project", "environment", "behavior", "behavior_kind", "actor", "action", "since", "until",
)  # fmt: skip


def add_http_audit_commands(sub: Any) -> None:
    """Add ``tail`` and ``list`` to the subparsers of the ``audit`` command group."""
    tail = add_command(
        sub, "tail", "print the latest audit entries; --follow for new ones", run_tail
    )
    tail.add_argument("--project", metavar="PROJECT", help="only this project's entries")
    tail.add_argument("-n", "--lines", type=int, default=20, metavar="N", help="default 20")
    tail.add_argument("-f", "--follow", action="store_true", help="keep printing new entries")
    tail.add_argument(
        "--interval", type=float, default=2.0, metavar="SECONDS", help="poll interval (default 2)"
    )
    ls = add_command(sub, "list", "list audit entries matching filters", run_list)
    ls.add_argument("--project", metavar="PROJECT")
    ls.add_argument("--env", dest="environment", metavar="ENV")
    ls.add_argument("--behavior", metavar="FLAG", help="flag (behavior) key")
    ls.add_argument(
        "--behavior-kind", choices=BEHAVIOR_KINDS, help="only entries about this kind of behavior"
    )
    ls.add_argument("--actor", metavar="NAME")
    ls.add_argument("--action", metavar="ACTION", help="e.g. flag:configured")
    ls.add_argument("--since", metavar="TIME", help="ISO 8601 time, inclusive")
    ls.add_argument("--until", metavar="TIME", help="ISO 8601 time, exclusive")
    ls.add_argument("--after-seq", type=int, metavar="SEQ", help="only entries after SEQ")
    ls.add_argument("--order", choices=("asc", "desc"), default="desc", help="by seq")
    ls.add_argument("--limit", type=int, default=50, metavar="N", help="default 50")
    ls.add_argument("--cursor", metavar="CURSOR", help="next page, from a previous list")


def _object(entry: dict[str, Any]) -> str:
    where = "/".join(str(entry[k]) for k in ("project", "environment") if entry.get(k))
    key = f"{entry.get('object_type')}:{entry.get('object_key')}"
    return f"{where} {key}" if where else key


AUDIT_COLUMNS: list[Column] = [
    ("SEQ", lambda e: e.get("seq")),
    ("TIME", lambda e: e.get("ts")),
    ("ACTOR", lambda e: e.get("actor_name")),
    ("SOURCE", lambda e: e.get("source")),
    ("ACTION", lambda e: e.get("action")),
    ("OBJECT", _object),
    ("REASON", lambda e: e.get("reason")),
]


def entry_line(entry: dict[str, Any]) -> str:
    """One entry as one line, for ``tail``."""
    reason = f" — {entry['reason']}" if entry.get("reason") else ""
    return (
        f"#{entry.get('seq')} {entry.get('ts')} {entry.get('actor_name')} "
        f"[{entry.get('source')}] {entry.get('action')} {_object(entry)}{reason}"
    )


def _audit(api: ApiClient, params: Params) -> dict[str, Any]:
    page: dict[str, Any] = api.get(api_path("audit"), params).body
    return page


def run_list(args: argparse.Namespace) -> int:
    params: dict[str, str | int | bool | None] = {f: getattr(args, f) for f in FILTERS}
    params |= {"after_seq": args.after_seq, "order": args.order, "limit": args.limit}
    params["cursor"] = args.cursor
    with client_for(args) as api:
        page = _audit(api, params)
    if args.json:
        print_json(page)
        return 0
    print_table(page.get("items", []), AUDIT_COLUMNS)
    if page.get("next_cursor"):
        print(f"more entries: add --cursor {page['next_cursor']}", file=sys.stderr)
    return 0


def run_tail(args: argparse.Namespace) -> int:
    if args.interval < MIN_INTERVAL:
        raise CliError(f"--interval: at least {MIN_INTERVAL} seconds")
    with client_for(args) as api:
        latest = _audit(api, {"project": args.project, "order": "desc", "limit": args.lines})
        entries = list(reversed(latest.get("items", [])))
        last_seq = _show(args, entries, 0)
        if not args.follow:
            return 0
        try:
            while True:
                sleep(args.interval)
                last_seq = _show(args, list(_newer(api, args.project, last_seq)), last_seq)
        except KeyboardInterrupt:
            return EXIT_INTERRUPTED


def _newer(api: ApiClient, project: str | None, after_seq: int) -> Iterator[dict[str, Any]]:
    """Every entry after ``after_seq``, oldest first."""
    while True:
        page = _audit(
            api, {"project": project, "after_seq": after_seq, "order": "asc", "limit": PAGE}
        )
        items = page.get("items", [])
        yield from items
        if len(items) < PAGE:
            return
        after_seq = int(items[-1]["seq"])


def _show(args: argparse.Namespace, entries: list[dict[str, Any]], last_seq: int) -> int:
    """Print ``entries`` (one JSON object a line with --json); the highest seq seen."""
    for entry in entries:
        print(json.dumps(entry, ensure_ascii=False) if args.json else entry_line(entry), flush=True)
        last_seq = max(last_seq, int(entry.get("seq", 0)))
    return last_seq
