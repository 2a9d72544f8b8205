"""The database side of ``lockgate audit verify|export|checkpoints export``.

Imported only when one of these commands runs, so that the ``lockgate`` command starts
without the database libraries (the ``server`` extra).
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

from lockgate.cli.errors import EXIT_BROKEN, EXIT_FAILURE, EXIT_UNREACHABLE, CliError
from lockgate.cli.output import counted
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

__all__ = ["run_checkpoints_export", "run_export", "run_verify"]


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
            f"audit chain intact: {counted(report.entries, 'entry', 'entries')}, "
            f"head seq {report.head_seq}, {counted(verified, 'checkpoint')} verified"
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
            f"the signatures of {counted(report.signatures_unchecked, 'checkpoint')} were not "
            "checked: "
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
