"""``lockgate audit``: verify and export the audit log, directly from the database.

No server is needed: the commands read the database named by ``--database-url`` or the
SQLite database in ``--data-dir`` (defaults: ``LOCKGATE_DATABASE_URL``,
``LOCKGATE_DATA_DIR``, ``./lockgate-data``). Exit codes (:mod:`lockgate.cli.errors`): 0
intact / done, 1 a database error while reading, 2 no such database or input, or one never
migrated, 4 the chain is broken, 8 the database cannot be reached.

``tail`` and ``list`` in the same group read the log over HTTP
(:mod:`lockgate.cli.audit_http_cmds`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import make_url
from sqlalchemy.exc import SQLAlchemyError

from lockgate.cli import audit_http_cmds
from lockgate.cli.errors import EXIT_BROKEN, EXIT_FAILURE, EXIT_UNREACHABLE, CliError
from lockgate.settings import Settings, SettingsError, load_settings
from lockgate.store.audit import read_entries
from lockgate.store.checkpoints import (
    Checkpoint,
    CheckpointFileError,
    Signer,
    export_checkpoints,
    load_public_key,
    read_checkpoint_file,
    signing_key_path,
)
from lockgate.store.db import Database
from lockgate.store.migrate import current_revision
from lockgate.store.verify import VerifyError, VerifyReport, verify_database

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


# --- commands -----------------------------------------------------------------------------


def run_verify(args: argparse.Namespace) -> int:
    settings = _settings(args)
    external = _read_checkpoints(args.checkpoints, "--checkpoints") if args.checkpoints else []
    anchors = args.anchors or settings.audit_anchor_file
    if anchors:
        external += _read_checkpoints(anchors, "--anchors")
    every = (
        settings.audit_checkpoint_every if args.checkpoint_every is None else args.checkpoint_every
    )
    if every < 0:
        raise CliError("--checkpoint-every: must be 0 or more")
    keys = _public_keys(settings, args.public_key)
    with _database(settings) as database:
        try:
            report = verify_database(
                database, public_key=keys, external_checkpoints=external, checkpoint_every=every
            )
        except VerifyError as exc:
            raise CliError(str(exc), EXIT_FAILURE) from None
    _print_report(report, as_json=args.json)
    return 0 if report.ok else EXIT_BROKEN


def run_export(args: argparse.Namespace) -> int:
    settings = _settings(args)
    with _database(settings) as database, _output(args.output) as out, database.read() as conn:
        for entry in read_entries(conn, after=args.since_seq):
            out.write(_json_line(entry.to_dict()))
    return 0


def run_checkpoints_export(args: argparse.Namespace) -> int:
    settings = _settings(args)
    keys = _public_keys(settings, args.public_key)
    if not keys:
        _warn("no public key found: the exported checkpoints carry none (use --public-key)")
    with _database(settings) as database, database.read() as conn:
        rows = export_checkpoints(conn, keys)
    with _output(args.output) as out:
        for row in rows:
            out.write(_json_line(row))
    return 0


def _print_report(report: VerifyReport, *, as_json: bool) -> None:
    if as_json:
        print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    elif report.first is None:
        verified = report.checkpoints_checked - report.signatures_unchecked
        print(
            f"audit chain intact: {report.entries} entries, head seq {report.head_seq}, "
            f"{verified} checkpoints verified"
        )
    else:
        first = report.first
        print(f"audit chain BROKEN at entry {first.seq}: {first.kind} — {first.detail}")
        for problem in report.problems[1:]:
            print(f"  also at entry {problem.seq}: {problem.kind} — {problem.detail}")
    if report.key_source == "database":
        _warn(
            "checkpoint signatures were checked with the keys the database records, which "
            "whoever controls the database controls too: pass --public-key or --anchors"
        )
    if report.signatures_unchecked:
        _warn(
            f"the signatures of {report.signatures_unchecked} checkpoints were not checked: "
            "no public key (use --data-dir with the signing key, --public-key or --checkpoints)"
        )


# --- inputs and outputs -------------------------------------------------------------------


def _settings(args: argparse.Namespace) -> Settings:
    try:
        return load_settings({"data_dir": args.data_dir, "database_url": args.database_url})
    except SettingsError as exc:
        raise CliError(str(exc)) from None


def _safe_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except SQLAlchemyError:
        return "<invalid URL>"


def _check_sqlite_exists(settings: Settings) -> None:
    """Refuse a missing SQLite database instead of creating an empty one."""
    url = settings.effective_database_url
    try:
        path = make_url(url).database
    except SQLAlchemyError:
        raise CliError(f"invalid database URL {url!r}") from None
    if not path or path == ":memory:":
        raise CliError("an in-memory SQLite database has no audit log")
    if not settings.database_url and not settings.data_path.is_dir():
        raise CliError(
            f"data directory {settings.data_path} does not exist (use --data-dir or --database-url)"
        )
    if not Path(path).is_file():
        raise CliError(f"no database at {path} (use --data-dir or --database-url)")


@contextmanager
def _database(settings: Settings) -> Iterator[Database]:
    """The migrated database; every database failure becomes a one-line error."""
    url = settings.effective_database_url
    if settings.is_sqlite:
        _check_sqlite_exists(settings)
    try:
        database = Database(url, pool_size=1)
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        raise CliError(f"cannot use the database URL {_safe_url(url)}: {exc}") from None
    try:
        _require_schema(database, url)
        yield database
    except SQLAlchemyError as exc:
        message = f"database error at {_safe_url(url)}: {_first_line(exc)}"
        raise CliError(message, EXIT_FAILURE) from None
    finally:
        database.dispose()


def _require_schema(database: Database, url: str) -> None:
    try:
        revision = current_revision(database)
    except SQLAlchemyError as exc:
        message = f"cannot connect to {_safe_url(url)}: {_first_line(exc)}"
        raise CliError(message, EXIT_UNREACHABLE) from None
    if revision is None:
        raise CliError(
            f"the database at {_safe_url(url)} has no Lockgate schema: it was never migrated"
        )


def _first_line(exc: SQLAlchemyError) -> str:
    cause = getattr(exc, "orig", None) or exc
    return (str(cause).strip().splitlines() or [type(cause).__name__])[0]


def _read_checkpoints(path: str, option: str) -> list[Checkpoint]:
    try:
        return read_checkpoint_file(path)
    except CheckpointFileError as exc:
        raise CliError(f"{option}: {exc}") from None


def _public_keys(settings: Settings, files: list[str]) -> list[Ed25519PublicKey]:
    """The keys named with --public-key, else the public half of the server's signing key."""
    keys = [_read_public_key(path) for path in files]
    if keys:
        return keys
    key_file = signing_key_path(settings)
    if not key_file.exists():
        return []
    try:
        return [Signer.from_pem(key_file.read_bytes()).public_key]
    except (OSError, ValueError) as exc:
        _warn(f"cannot use the signing key {key_file}: {exc}")
        return []


def _read_public_key(path: str) -> Ed25519PublicKey:
    try:
        return load_public_key(Path(path).read_bytes())
    except OSError as exc:
        raise CliError(f"--public-key: cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise CliError(f"--public-key: {path}: {exc}") from None


@contextmanager
def _output(path: str | None) -> Iterator[TextIO]:
    """stdout, or ``path`` written completely or not at all."""
    if path is None:
        yield sys.stdout
        return
    partial = Path(f"{path}.partial")
    try:
        out = partial.open("w", encoding="utf-8", newline="\n")
    except OSError as exc:
        raise CliError(f"--output: cannot write {path}: {exc.strerror}") from None
    try:
        with out:
            yield out
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def _json_line(value: dict[str, Any]) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")) + "\n"


def _warn(message: str) -> None:
    print(f"lockgate: warning: {message}", file=sys.stderr)
