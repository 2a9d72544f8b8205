"""Every command in a ``sh`` block of README.md and docs/ runs, as written, against a server.

Each document gets a fresh ``lockgate serve`` (SQLite in ``./lockgate-data`` of a fresh
working directory, the first-start admin token in ``LOCKGATE_TOKEN``) and its commands run
in order in bash, each in the environment the previous ones exported, and must exit 0 (or
the code its comment documents: ``# exits 9: waits for approval``).
``lockgate`` and ``.venv/bin/lockgate`` are this checkout's command.

What a reader has to put in themselves is replaced, and listed here: the server's address
and the token "as printed". Commands that cannot run here are listed in ``NOT_RUN`` with
the test that covers them instead. Synopses (``[--option ...]``) use ``text`` blocks.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.lockgate_server import ADMIN_TOKEN, Server, running_server

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [
    "README.md",
    "docs/cli.md",
    "docs/governance.md",
    "docs/contracts.md",
    "docs/configuration.md",
    "docs/audit.md",
    "docs/openfeature.md",
    "docs/sdk.md",
]
NOT_RUN = {
    "./scripts/serve": "starts a server for good; the test starts the same one",
    "./scripts/test": "is this test suite",
    "pip install": "installs from PyPI; tests/install checks each extra",
    "lockgate serve": "starts a server for good; tests/install and tests/cli start it",
}
FOLLOWS = "--follow"
"""A command that runs until interrupted: it must still be running after two seconds."""
COMMAND_TIMEOUT = 30.0
EXPECTED_EXIT = re.compile(r"#\s*exits (\d+)")
"""A command documented to exit non-zero says so in its comment: ``… # exits 9: …``."""


def commands(document: str) -> list[str]:
    """The commands of the document's ``sh`` blocks; continued lines joined."""
    text = (ROOT / document).read_text(encoding="utf-8")
    found = []
    for block in re.findall(r"^```sh\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL):
        pending = ""
        for line in re.sub(r"\\\n\s*", " ", block).splitlines():
            pending = f"{pending}\n{line}" if pending else line
            if pending.count("'") % 2:  # a quoted argument goes on to the next line
                continue
            if pending.strip() and not pending.lstrip().startswith("#"):
                found.append(pending.strip())
            pending = ""
    return found


def as_run_here(command: str, server: Server) -> str:
    host = server.url.removeprefix("http://")
    for written, here in (
        ("http://127.0.0.1:8080", server.url),
        ("https://lockgate.internal.example", server.url),
        ("localhost:8080", host),
        ("lgt_...", server.token),
        ("lgt_…", server.token),
    ):
        command = command.replace(written, here)
    return command


def skipped(command: str) -> str | None:
    bare = command.removeprefix(".venv/bin/")
    return next((why for start, why in NOT_RUN.items() if bare.startswith(start)), None)


def run(command: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run in bash with the exported environment of earlier commands; save it after."""
    state = shlex.quote(str(cwd / ".doc-env"))
    script = f"set -a\nsource {state}\n{command}\nexport -p > {state}"
    if FOLLOWS in command:
        return _still_running(script, cwd, env)
    return subprocess.run(
        ["/bin/bash", "-e", "-o", "pipefail", "-c", script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )


def _still_running(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run for two seconds; then stop the command's own process group (bash and lockgate)."""
    with subprocess.Popen(
        ["/bin/bash", "-c", script],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as process:
        try:
            out, err = process.communicate(timeout=2.0)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGTERM)
            out, err = process.communicate(timeout=10.0)
            return subprocess.CompletedProcess(process.args, 0, out, err)
    return subprocess.CompletedProcess(process.args, process.returncode or 1, out, err)


@pytest.mark.slow
@pytest.mark.parametrize("document", DOCUMENTS)
def test_every_command_of_the_document_runs_as_written(document: str, tmp_path: Path) -> None:
    venv_bin = Path(sys.executable).parent
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / "bin").symlink_to(venv_bin)
    (tmp_path / ".doc-env").write_text("", encoding="utf-8")
    env = {
        "PATH": f"{venv_bin}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
    }
    with running_server(tmp_path, data_name="lockgate-data") as server:
        env |= {"LOCKGATE_URL": server.url, "LOCKGATE_TOKEN": ADMIN_TOKEN}
        env |= {"OTHER_TOKEN": ADMIN_TOKEN, "PASSWORD": "correct horse battery staple 42"}
        database = tmp_path / "lockgate-data" / "lockgate.db"
        env["LOCKGATE_DATABASE_URL"] = f"sqlite:///{database}"
        ran = 0
        for command in commands(document):
            if skipped(command):
                continue
            result = run(as_run_here(command, server), tmp_path, env)
            documented = EXPECTED_EXIT.search(command)
            expected = int(documented.group(1)) if documented else 0
            assert result.returncode == expected, (
                f"{document}: `{command}` exited {result.returncode}\n"
                f"stdout: {result.stdout[-2000:]}\nstderr: {result.stderr[-2000:]}"
            )
            ran += 1
    assert commands(document), f"{document} has no commands: drop it from DOCUMENTS"


def test_every_document_with_commands_is_run() -> None:
    with_commands = {
        str(path.relative_to(ROOT))
        for path in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]
        if "```sh" in path.read_text(encoding="utf-8")
    }
    assert with_commands - {"docs/benchmarks.md"} == set(DOCUMENTS)
