"""``lockgate audit``: verify and export the audit log, directly from the database.

No server is needed: the commands read the database named by ``--database-url`` or the
SQLite database in ``--data-dir`` (defaults: ``LOCKGATE_DATABASE_URL``,
``LOCKGATE_DATA_DIR``, ``./lockgate-data``). Exit codes (:mod:`lockgate.cli.errors`): 0
intact / done, 1 a database error while reading, 2 no such database or input, or one never
migrated, 4 the chain is broken, 8 the database cannot be reached.

``verify --file`` checks an export's hash chain with no database and no server extra
(:mod:`lockgate.cli.audit_file`). ``tail`` and ``list`` in the same group read the log over HTTP
(:mod:`lockgate.cli.audit_http_cmds`).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from lockgate.cli import audit_file, audit_http_cmds
from lockgate.cli.errors import EXIT_BROKEN
from lockgate.cli.extras import require

__all__ = ["EXIT_BROKEN", "register"]


def register(commands: Any) -> None:
    audit = commands.add_parser(
        "audit",
        help="verify and export the audit log",
        description="Verify the tamper-evident audit log and export it, from the database.",
    )
    audit.set_defaults(run=_usage(audit))
    sub = audit.add_subparsers(title="audit commands", metavar="COMMAND")
    _register_verify(sub)
    _register_export(sub)
    _register_checkpoints(sub)
    audit_http_cmds.add_http_audit_commands(sub)


def _usage(parser: argparse.ArgumentParser) -> Any:
    def run(_args: argparse.Namespace) -> int:
        parser.print_help(sys.stderr)
        return 2

    return run


def _add_location(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        help="server data directory: SQLite database and signing key "
        "(default: $LOCKGATE_DATA_DIR or ./lockgate-data)",
    )
    parser.add_argument(
        "--database-url",
        metavar="URL",
        help="database URL, e.g. postgresql://user@host/db (default: $LOCKGATE_DATABASE_URL, "
        "else the SQLite database in the data directory)",
    )


def _add_public_key(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--public-key",
        action="append",
        default=[],
        metavar="FILE",
        help="PEM public key trusted for checkpoint signatures (repeatable; "
        "default: the key of <data-dir>/audit-signing.key)",
    )


def _add_output(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", metavar="FILE", help="write to FILE instead of stdout")


def _register_verify(sub: Any) -> None:
    verify = sub.add_parser(
        "verify",
        help="check the hash chain, the head and the signed checkpoints",
        description="Verify the audit chain; exits 4 and names the first bad entry if broken.",
    )
    _add_location(verify)
    verify.add_argument(
        "--checkpoints",
        metavar="FILE",
        help="JSONL file from `lockgate audit checkpoints export`, kept off-host",
    )
    verify.add_argument(
        "--anchors",
        metavar="FILE",
        help="the anchor file the server appends checkpoints to (audit_anchor_file, the "
        "default when set); its keys are pinned",
    )
    verify.add_argument(
        "--checkpoint-every",
        type=int,
        metavar="N",
        help="the server's checkpoint cadence (audit_checkpoint_every, the default); "
        "N entries without a checkpoint are reported; 0 skips the check",
    )
    _add_public_key(verify)
    verify.add_argument(
        "--file",
        metavar="EXPORT",
        help="verify the hash chain of a `lockgate audit export` file instead (no database)",
    )
    verify.add_argument("--json", action="store_true", help="print the report as JSON")
    verify.set_defaults(run=run_verify)


def _register_export(sub: Any) -> None:
    export = sub.add_parser(
        "export",
        help="export audit entries as JSON lines",
        description="Export audit entries in seq order, one JSON object per line.",
    )
    _add_location(export)
    export.add_argument("--format", choices=["jsonl"], default="jsonl", help="output format")
    export.add_argument(
        "--since-seq", type=int, metavar="N", help="only entries with seq greater than N"
    )
    _add_output(export)
    export.set_defaults(run=run_export)


def _register_checkpoints(sub: Any) -> None:
    checkpoints = sub.add_parser(
        "checkpoints",
        help="signed checkpoints of the audit chain",
        description="Work with the signed checkpoints of the audit chain.",
    )
    checkpoints.set_defaults(run=_usage(checkpoints))
    cp_sub = checkpoints.add_subparsers(title="checkpoint commands", metavar="COMMAND")
    export = cp_sub.add_parser(
        "export",
        help="export checkpoints (with the public key) as JSON lines, to keep off-host",
        description="Export the signed checkpoints as JSON lines, each with its public key.",
    )
    _add_location(export)
    _add_public_key(export)
    _add_output(export)
    export.set_defaults(run=run_checkpoints_export)


# --- commands: the database work lives in audit_db, imported only when a command runs ----


def run_verify(args: argparse.Namespace) -> int:
    if args.file is not None:
        return audit_file.run_verify_file(args)
    _require_database()
    from lockgate.cli import audit_db

    return audit_db.run_verify(args)


def run_export(args: argparse.Namespace) -> int:
    _require_database()
    from lockgate.cli import audit_db

    return audit_db.run_export(args)


def run_checkpoints_export(args: argparse.Namespace) -> int:
    _require_database()
    from lockgate.cli import audit_db

    return audit_db.run_checkpoints_export(args)


def _require_database() -> None:
    require("server", "sqlalchemy", "cryptography")
