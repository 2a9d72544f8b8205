"""docs/cli.md is checked against the code: its exit code table and its list of commands."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from lockgate.cli import audit_cmds, audit_http_cmds
from lockgate.cli.errors import EXIT_BROKEN, EXIT_CODES
from lockgate.cli.main import build_parser

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
HTTP_GROUPS = (
    "projects",
    "envs",
    "posture",
    "flags",
    "contract",
    "segments",
    "tools",
    "tool-policy",
    "approvals",
    "incident",
    "guardrails",
    "rollout",
    "runtime-approvals",
    "evidence",
    "webhook",
    "alert-triggers",
    "users",
    "members",
    "tokens",
    "sdk-keys",
    "decisions",
    "subject",
    "lifecycle",
    "cleanup",
    "code-refs",
)
HTTP_COMMANDS = ("login", "kill", "restore", "rollback")


def doc_text() -> str:
    return DOC.read_text(encoding="utf-8")


def exit_code_rows() -> list[tuple[int, str, tuple[int, ...]]]:
    """The rows of the table under ``## Exit codes``: (code, meaning, HTTP statuses)."""
    section = doc_text().split("\n## Exit codes\n", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].isdigit():
            continue
        statuses = tuple(int(s) for s in re.findall(r"\d+", cells[2]))
        rows.append((int(cells[0]), cells[1], statuses))
    return rows


def test_the_exit_code_table_matches_the_code() -> None:
    expected = [(row.code, row.meaning, row.http_statuses) for row in EXIT_CODES]
    assert exit_code_rows() == expected


def test_the_audit_verify_exit_code_is_the_shared_one() -> None:
    assert audit_cmds.EXIT_BROKEN == EXIT_BROKEN


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def http_commands() -> list[tuple[str, argparse.ArgumentParser]]:
    groups = subcommands(build_parser())
    found = [
        (f"{group} {name}", parser)
        for group in HTTP_GROUPS
        for name, parser in subcommands(groups[group]).items()
    ]
    found += [(name, groups[name]) for name in HTTP_COMMANDS]
    audit = argparse.ArgumentParser()
    audit_http_cmds.add_http_audit_commands(audit.add_subparsers())
    return found + [(f"audit {name}", p) for name, p in subcommands(audit).items()]


COMMANDS = http_commands()


@pytest.mark.parametrize(("command", "parser"), COMMANDS, ids=[c for c, _ in COMMANDS])
def test_every_http_command_and_option_is_documented(
    command: str, parser: argparse.ArgumentParser
) -> None:
    examples = [line for line in doc_text().splitlines() if f"lockgate {command}" in line]
    assert examples, f"docs/cli.md has no example of `lockgate {command}`"
    options = {
        option
        for action in parser._actions
        for option in action.option_strings
        if option.startswith("--") and option not in ("--help", "--url", "--token", "--json")
    }
    missing = sorted(o for o in options if o not in doc_text())
    assert not missing, f"docs/cli.md never mentions {missing} of `lockgate {command}`"


def test_the_environment_variables_are_documented() -> None:
    text = doc_text()
    assert "`LOCKGATE_URL`" in text
    assert "`LOCKGATE_TOKEN`" in text
    assert "`http://127.0.0.1:8080`" in text
