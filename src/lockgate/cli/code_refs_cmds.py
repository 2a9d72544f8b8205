"""``lockgate code-refs scan PATH`` and ``lockgate code-refs list PROJECT``.

The scan runs locally (docs/cleanup.md#code-references). Its keys come from the server
(``--project``: every behavior, archived ones marked) or a file (``--keys``: one key a line,
``KEY archived`` for an archived one). ``--upload`` sends the result for one repository and
branch; ``--ci`` exits 3 when the code references a behavior that is archived or unknown.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from lockgate.cli.errors import EXIT_INVALID, EXIT_USAGE, CliError
from lockgate.cli.extras import require
from lockgate.cli.groups import add_command, add_group
from lockgate.cli.http import ApiClient, api_path, client_for
from lockgate.cli.output import counted, print_json, warn

__all__ = ["register"]

UPLOAD_PART = 5_000
"""References per upload request (the server's limit)."""
UPLOAD_BYTES = 512 * 1024
"""About this much JSON per upload request (the server takes 1 MiB bodies by default)."""


def register(commands: Any) -> None:
    sub = add_group(commands, "code-refs", "where behavior keys are used in source code")
    scan = add_command(sub, "scan", "find behavior keys in a source tree", run_scan)
    scan.add_argument("path", metavar="PATH", help="the tree to scan")
    keys = scan.add_mutually_exclusive_group()
    keys.add_argument("--project", help="take the keys from this project on the server")
    keys.add_argument("--keys", metavar="FILE", help="a file of keys, one a line")
    scan.add_argument(
        "--delimiters", default="\"'`", help="characters around a quoted key (default: \"'`)"
    )
    scan.add_argument(
        "--alias",
        default="",
        metavar="STYLES",
        help="also match case variants: camel,pascal,snake,upper,kebab (comma-separated)",
    )
    scan.add_argument("--no-sdk-calls", action="store_true", help="do not look for SDK calls")
    scan.add_argument("--context", type=int, default=0, metavar="N",
                      help="print N lines around each reference")  # fmt: skip
    scan.add_argument("--jobs", type=int, default=min(os.cpu_count() or 1, 4), metavar="N",
                      help="processes to scan with (default: CPUs, at most 4)")  # fmt: skip
    scan.add_argument(
        "--ci",
        action="store_true",
        help="exit 3 when the code references a behavior that is archived or unknown",
    )
    scan.add_argument("--upload", action="store_true", help="send the result to the server")
    scan.add_argument(
        "--repository",
        help="the repository's name (with --upload; default: git's origin URL, else the "
        "directory's name)",
    )
    scan.add_argument("--branch", help="the branch scanned (with --upload; default: git's)")
    scan.add_argument("--commit", help="the commit scanned (with --upload; default: git's HEAD)")
    ls = add_command(sub, "list", "the references uploaded to a project", run_list)
    ls.add_argument("project", metavar="PROJECT")
    ls.add_argument("--flag", metavar="BEHAVIOR", help="one behavior only")


def _keys_from_file(path: str) -> dict[str, bool]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}", EXIT_USAGE) from None
    keys: dict[str, bool] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        words = raw.split("#", 1)[0].split()
        if not words:
            continue
        if len(words) > 2 or (len(words) == 2 and words[1] != "archived"):
            raise CliError(f"{path}:{number}: expected KEY or KEY archived", EXIT_USAGE)
        keys[words[0]] = len(words) == 2
    return keys


def _keys_from_server(api: ApiClient, project: str) -> dict[str, bool]:
    path = api_path("projects", project, "flags")
    keys = {f["key"]: False for f in api.paged(path)}
    keys.update({f["key"]: True for f in api.paged(path, {"archived": True})})
    return keys


def _options(args: argparse.Namespace) -> Any:
    from lockgate.coderefs import ALIAS_STYLES, SDK_CALLS, MatcherOptions

    styles = tuple(s.strip() for s in args.alias.split(",") if s.strip())
    unknown = [s for s in styles if s not in ALIAS_STYLES]
    if unknown:
        raise CliError(
            f"--alias: unknown style {unknown[0]!r}; one of {', '.join(ALIAS_STYLES)}", EXIT_USAGE
        )
    if not args.delimiters:
        raise CliError("--delimiters: give at least one character", EXIT_USAGE)
    calls = () if args.no_sdk_calls else SDK_CALLS
    return MatcherOptions(delimiters=args.delimiters, alias_styles=styles, sdk_calls=calls)


def _check_args(args: argparse.Namespace) -> None:
    if not Path(args.path).is_dir():
        raise CliError(f"{args.path}: not a directory", EXIT_USAGE)
    if args.project is None and args.keys is None:
        raise CliError("name the keys: --project PROJECT (from the server) or --keys FILE",
                       EXIT_USAGE)  # fmt: skip
    if args.upload and args.project is None:
        raise CliError("--upload needs --project", EXIT_USAGE)
    if args.upload:
        _from_git(args)
    if args.jobs < 1 or args.context < 0:
        raise CliError("--jobs must be 1 or more and --context 0 or more", EXIT_USAGE)


def _git(path: str, *argv: str) -> str | None:
    git = shutil.which("git")
    if git is None:
        return None
    try:
        # A fixed git command on the tree the user named; nothing comes from elsewhere.
        done = subprocess.run(  # noqa: S603
            [git, "-C", path, *argv], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    value = done.stdout.strip()
    return value if done.returncode == 0 and value and value != "HEAD" else None


def _from_git(args: argparse.Namespace) -> None:
    """Fill in --repository, --branch and --commit from the tree's git checkout."""
    if not args.repository:
        origin = _git(args.path, "remote", "get-url", "origin")
        args.repository = origin or Path(args.path).resolve().name
    args.branch = args.branch or _git(args.path, "rev-parse", "--abbrev-ref", "HEAD")
    args.commit = args.commit or _git(args.path, "rev-parse", "HEAD")
    if not args.branch:
        raise CliError("--upload: name the --branch (no git branch found here)", EXIT_USAGE)


def run_scan(args: argparse.Namespace) -> int:
    require("cli", "ahocorasick_rs", "pathspec")
    from lockgate.coderefs import scan

    _check_args(args)
    options = _options(args)
    if args.keys is not None:
        keys = _keys_from_file(args.keys)
        result = scan(args.path, keys, options, jobs=args.jobs)
    else:
        with client_for(args) as api:
            keys = _keys_from_server(api, args.project)
            result = scan(args.path, keys, options, jobs=args.jobs)
            if args.upload:
                _upload(api, args, result)
    archived = sorted({r.key for r in result.references if keys.get(r.key)})
    unknown = sorted({r.key for r in result.references if r.key not in keys})
    if args.json:
        print_json(_document(result, archived, unknown))
    else:
        _print(args, result)
    summary = (
        f"{counted(len(result.references), 'reference')} to "
        f"{counted(len(result.keys()), 'behavior')} in {counted(result.files_scanned, 'file')} "
        f"({result.bytes_scanned / 1e6:.1f} MB, {result.seconds:.2f} s)"
    )
    print(summary, file=sys.stderr)
    for what, found in (("archived", archived), ("unknown", unknown)):
        if found:
            warn(f"code references {counted(len(found), what + ' behavior')}: {', '.join(found)}")
    return EXIT_INVALID if args.ci and (archived or unknown) else 0


def _document(result: Any, archived: list[str], unknown: list[str]) -> dict[str, Any]:
    return {
        "root": result.root,
        "files_scanned": result.files_scanned,
        "bytes_scanned": result.bytes_scanned,
        "skipped": result.skipped,
        "seconds": round(result.seconds, 3),
        "references": [r.document() for r in result.references],
        "archived": archived,
        "unknown": unknown,
    }


def _print(args: argparse.Namespace, result: Any) -> None:
    lines_of: dict[str, list[str]] = {}
    for ref in result.references:
        print(f"{ref.path}:{ref.line}: {ref.key} ({ref.how}){'' if ref.known else ' unknown'}")
        if args.context == 0:
            print(f"    {ref.text}")
            continue
        if ref.path not in lines_of:
            full = Path(args.path) / ref.path
            lines_of[ref.path] = full.read_text(encoding="utf-8", errors="replace").splitlines()
        lines = lines_of[ref.path]
        for number in range(max(1, ref.line - args.context),
                            min(len(lines), ref.line + args.context) + 1):  # fmt: skip
            mark = ">" if number == ref.line else " "
            print(f"  {mark}{number:>6} | {lines[number - 1]}")


def _parts(refs: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Requests of at most ``UPLOAD_PART`` references and about ``UPLOAD_BYTES`` of JSON."""
    parts: list[list[dict[str, Any]]] = [[]]
    size = 0
    for ref in refs:
        length = len(json.dumps(ref)) + 2
        if parts[-1] and (len(parts[-1]) == UPLOAD_PART or size + length > UPLOAD_BYTES):
            parts.append([])
            size = 0
        parts[-1].append(ref)
        size += length
    return parts


def _upload(api: ApiClient, args: argparse.Namespace, result: Any) -> None:
    refs = [{"key": r.key, "path": r.path, "line": r.line, "text": r.text[:2000]}
            for r in result.references]  # fmt: skip
    path = api_path("projects", args.project, "code-refs")
    parts = _parts(refs)
    for number, part in enumerate(parts):
        body = {
            "repository": args.repository,
            "branch": args.branch,
            "commit": args.commit,
            "files_scanned": result.files_scanned if number == 0 else 0,
            "references": part,
            "append": number > 0,
        }
        api.post(path, body)
    print(
        f"uploaded {counted(len(refs), 'reference')} for {args.repository}@{args.branch}",
        file=sys.stderr,
    )


def run_list(args: argparse.Namespace) -> int:
    with client_for(args) as api:
        body = api.get(api_path("projects", args.project, "code-refs"), {"flag": args.flag}).body
    if args.json:
        print_json(body)
        return 0
    for upload in body["uploads"]:
        print(f"{upload['repository']}@{upload['branch']} ({upload.get('commit') or '-'}): "
              f"{counted(upload['files_scanned'], 'file')}, uploaded {upload['uploaded_at']} "
              f"by {upload['uploaded_by']}")  # fmt: skip
    for key, refs in sorted(body["references"].items()):
        print(f"\n{key}: {counted(len(refs), 'reference')}")
        for ref in refs:
            print(
                f"  {ref['repository']}@{ref['branch']}:{ref['path']}:{ref['line']}: {ref['text']}"
            )
    return 0
