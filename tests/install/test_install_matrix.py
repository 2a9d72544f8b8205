"""Each documented install works: core only, core + OpenFeature, the CLI, the server.

docs/cli.md ("Installing") lists what each extra enables; these tests run the ``lockgate``
command (``python -m lockgate``) in environments that hold exactly that extra.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from lockgate.audit_chain import GENESIS, entry_hash
from tests.engine.factories import flags_doc, string_flag
from tests.install.closure import pins
from tests.install.venvs import Venv, make_venv

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def venvs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Venv]:
    base = tmp_path_factory.mktemp("venvs")
    extras = {"core": (), "openfeature": ("openfeature",), "cli": ("cli",), "server": ("server",)}
    return {name: make_venv(base / name, wanted) for name, wanted in extras.items()}


@pytest.fixture
def snapshot(tmp_path: Path) -> Path:
    flag = string_flag(
        "banner", variations=[{"key": "a", "value": "A"}], default={"variation": "a"}
    )
    path = tmp_path / "snapshot.json"
    path.write_text(json.dumps(flags_doc(flag, version=4)), encoding="utf-8")
    return path


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield sock.getsockname()[1]


@pytest.fixture
def audit_export(tmp_path: Path) -> Path:
    """Three chained entries, as `lockgate audit export` writes them."""
    lines, prev = [], GENESIS
    for seq in (1, 2, 3):
        entry: dict[str, object] = {"seq": seq, "id": f"e{seq}", "reason": f"r{seq}"}
        digest = entry_hash(prev, entry)
        lines.append(json.dumps(entry | {"prev_hash": prev, "hash": digest}))
        prev = digest
    path = tmp_path / "audit.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


EVERYWHERE = ["core", "openfeature", "cli", "server"]


@pytest.mark.parametrize("name", EVERYWHERE)
def test_audit_verify_of_an_export_works_in_every_install(
    venvs: dict[str, Venv], name: str, audit_export: Path
) -> None:
    verified = venvs[name].run("audit", "verify", "--file", str(audit_export))
    assert (verified.returncode, verified.stdout.strip()) == (
        0,
        "audit export OK: 3 entries (seq 1 to 3), hash chain intact",
    ), verified.stderr
    audit_export.write_text(audit_export.read_text().replace('"r2"', '"edited"'))
    broken = venvs[name].run("audit", "verify", "--file", str(audit_export))
    assert broken.returncode == 4
    assert broken.stdout.startswith("audit export BROKEN: entry 2: modified")


@pytest.mark.parametrize("name", EVERYWHERE)
def test_help_and_the_offline_commands_work_in_every_install(
    venvs: dict[str, Venv], name: str, snapshot: Path
) -> None:
    venv = venvs[name]
    helped = venv.run("--help")
    assert helped.returncode == 0, helped.stderr
    assert "validate" in helped.stdout
    validated = venv.run("validate", "--snapshot", str(snapshot))
    assert (validated.returncode, validated.stdout.strip()) == (
        0,
        f"{snapshot}: ok (1 flag, 0 segments, version 4)",
    )
    evaluated = venv.run("eval", "--snapshot", str(snapshot), "--flag", "banner")
    assert evaluated.returncode == 0, evaluated.stderr
    assert 'value:     "A"' in evaluated.stdout


def test_the_core_install_has_nothing_but_the_standard_library(venvs: dict[str, Venv]) -> None:
    code = (
        "import importlib.util as u\n"
        "names = ('httpx', 'sqlalchemy', 'fastapi', 'openfeature')\n"
        "print([m for m in names if u.find_spec(m)])"
    )
    assert venvs["core"].run("-c", code).stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("name", "args", "extra"),
    [
        ("core", ["projects", "list"], "cli"),
        ("core", ["serve"], "server"),
        ("cli", ["serve"], "server"),
        ("cli", ["migrate"], "server"),
        ("cli", ["audit", "verify"], "server"),
    ],
    ids=["core-http", "core-serve", "cli-serve", "cli-migrate", "cli-audit-verify"],
)
def test_a_command_missing_its_extra_names_the_extra(
    venvs: dict[str, Venv], name: str, args: list[str], extra: str
) -> None:
    result = venvs[name].run(*args)
    assert result.returncode == 2
    assert f"pip install 'lockgate[{extra}]'" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_cli_install_talks_http(venvs: dict[str, Venv], busy_port: int) -> None:
    # Nothing answers HTTP on a port that only listens: the CLI gets there and times out
    # or is refused; either way it reports an unreachable server, not a missing module.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    result = venvs["cli"].run("projects", "list", "--url", f"http://127.0.0.1:{free}")
    assert result.returncode == 8, result.stderr
    assert "connection refused" in result.stderr


def test_the_openfeature_install_runs_the_provider(venvs: dict[str, Venv], snapshot: Path) -> None:
    code = (
        "from openfeature import api\n"
        "from lockgate.sdk import LockgateClient\n"
        "from lockgate.sdk.openfeature import LockgateProvider\n"
        f"api.set_provider(LockgateProvider(LockgateClient.from_file({str(snapshot)!r})))\n"
        "print(api.get_client().get_string_value('banner', 'none'))\n"
    )
    result = venvs["openfeature"].run("-c", code)
    assert (result.returncode, result.stdout.strip()) == (0, "A"), result.stderr


def test_the_server_install_migrates_and_refuses_a_busy_port(
    venvs: dict[str, Venv], tmp_path: Path, busy_port: int
) -> None:
    migrated = venvs["server"].run("migrate", "--data-dir", str(tmp_path / "data"))
    assert migrated.returncode == 0, migrated.stderr
    assert migrated.stdout.startswith("database schema is current")
    served = venvs["server"].run(
        "serve", "--data-dir", str(tmp_path / "data"), "--port", str(busy_port)
    )
    assert served.returncode == 2
    assert f"cannot listen on 127.0.0.1:{busy_port}: the port is already in use" in served.stderr
    assert "listening" not in served.stdout


def test_the_server_install_serves_mcp_over_http(venvs: dict[str, Venv], tmp_path: Path) -> None:
    code = (
        "from lockgate.api.app import create_app\n"
        "from lockgate.settings import Settings\n"
        f"app = create_app(Settings(data_dir={str(tmp_path / 'data')!r}))\n"
        "print(type(app.state.mcp).__name__)\n"
    )
    result = venvs["server"].run("-c", code)
    assert (result.returncode, result.stdout.strip()) == (0, "McpEndpoint"), result.stderr


@pytest.mark.parametrize("lock", ["server", "dev"])
def test_the_pinned_locks_are_exactly_what_the_extras_need(lock: str) -> None:
    text = (ROOT / "requirements" / f"{lock}.txt").read_text(encoding="utf-8")
    pinned = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert pinned == pins((lock,))
