"""``lockgate code-refs``, ``lifecycle`` and ``cleanup`` against a real ``lockgate serve``:
scan, upload, the archive refusal and force, CI exit codes, the report."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from tests.cli.lockgate_server import Cli
from tests.coderefs.tree import write_tree


@pytest.fixture
def project(cli: Cli) -> str:
    key = f"p-{uuid.uuid4().hex[:10]}"
    assert cli("projects", "create", key).code == 0
    assert cli("envs", "create", key, "production", "--protected").code == 0
    for flag in ("checkout", "renewal-banner", "checkout-v2"):
        made = cli("flags", "create", key, flag, "--kind", "boolean", "--owner", "growth")
        assert made.code == 0, made.err
    return key


def test_scan_upload_archive_and_ci(cli: Cli, project: str, tmp_path: Path) -> None:
    tree = str(write_tree(tmp_path / "repo"))
    scanned = cli("code-refs", "scan", tree, "--project", project, "--json", "--jobs", "1")
    assert scanned.code == 0, scanned.err
    refs = scanned.json["references"]
    assert ("app/checkout.py", 4, "checkout") in [(r["path"], r["line"], r["key"]) for r in refs]
    assert scanned.json["unknown"] == ["ghost-flag"]
    assert scanned.json["archived"] == []
    assert cli("code-refs", "scan", tree, "--project", project, "--ci").code == 3  # ghost-flag

    uploaded = cli(
        "code-refs", "scan", tree, "--project", project, "--upload", "--repository", "acme/shop",
        "--branch", "main", "--commit", "abc123",
    )  # fmt: skip
    assert uploaded.code == 0, uploaded.err
    assert "uploaded 12 references for acme/shop@main" in uploaded.err
    listed = cli("code-refs", "list", project, "--flag", "checkout")
    assert listed.out.startswith("acme/shop@main (abc123): 8 files")
    assert "acme/shop@main:svc/main.go:4:" in listed.out

    refused = cli("lifecycle", "archive", project, "checkout", "--reason", "done")
    assert refused.code == 7
    assert "cannot be archived: 5 code references" in refused.err
    forced = cli("lifecycle", "archive", project, "checkout", "--force", "--reason", "removed")
    assert (forced.code, forced.out) == (0, "flag checkout archived (version 2)\n")
    shown = cli("lifecycle", "show", project, "checkout")
    assert "stage:            archived — archived" in shown.out

    ci = cli("code-refs", "scan", tree, "--project", project, "--ci", "--json")
    assert ci.code == 3
    assert (ci.json["archived"], ci.json["unknown"]) == (["checkout"], ["ghost-flag"])
    assert "code references 1 archived behavior: checkout" in ci.err

    report = cli("cleanup", "report", project)
    assert report.code == 0, report.err
    assert "referenced but archived" in report.out
    assert "referenced but unknown" in report.out

    restored = cli("lifecycle", "restore", project, "checkout", "--reason", "still used")
    assert (restored.code, restored.out) == (0, "flag checkout restored (version 3)\n")


def test_upload_takes_the_branch_and_commit_from_git(
    cli: Cli, project: str, tmp_path: Path
) -> None:
    import subprocess

    repo = tmp_path / "shop"
    repo.mkdir()
    (repo / "app.py").write_text('mode = client.mode("checkout", ctx)\n')
    for argv in (
        ["init", "-q", "-b", "release"],
        ["add", "app.py"],
        ["-c", "user.name=t", "-c", "user.email=t@localhost", "commit", "-qm", "x"],
    ):
        subprocess.run(["git", "-C", str(repo), *argv], check=True)  # fmt: skip
    head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], check=True,
                          capture_output=True, text=True).stdout.strip()  # fmt: skip
    done = cli("code-refs", "scan", str(repo), "--project", project, "--upload")
    assert done.code == 0, done.err
    assert "uploaded 1 reference for shop@release" in done.err
    listed = cli("code-refs", "list", project, "--json").json
    assert [(u["repository"], u["branch"], u["commit"]) for u in listed["uploads"]] == [
        ("shop", "release", head)
    ]


def test_ci_mode_passes_when_every_reference_is_live(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text('on = client.variation("checkout", ctx, False)\n')
    keys = tmp_path / "keys.txt"
    keys.write_text("checkout\nold-banner archived  # gone\n")
    clean = cli("code-refs", "scan", str(tmp_path), "--keys", str(keys), "--ci")
    assert clean.code == 0, clean.err
    assert (
        clean.out
        == 'app.py:1: checkout (sdk_call)\n    on = client.variation("checkout", ctx, False)\n'
    )
    (tmp_path / "old.ts").write_text("// shows it\nconst b = flags['old-banner'];\n")
    stale = cli("code-refs", "scan", str(tmp_path), "--keys", str(keys), "--ci", "--context", "1")
    assert stale.code == 3
    assert "  >     2 | const b = flags['old-banner'];" in stale.out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--keys", "KEYS", "--alias", "shouty"], "--alias: unknown style 'shouty'"),
        ([], "name the keys: --project PROJECT"),
        (["--keys", "KEYS", "--upload"], "--upload needs --project"),
        (["--keys", "missing.txt"], "cannot read missing.txt"),
    ],
)
def test_bad_scan_arguments_exit_2_with_a_message(
    cli: Cli, tmp_path: Path, argv: list[str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "KEYS").write_text("checkout\n")
    bad = cli("code-refs", "scan", str(tmp_path), *argv)
    assert bad.code == 2
    assert message in bad.err
    assert "Traceback" not in bad.err


def test_uploads_are_split_by_count_and_size() -> None:
    from lockgate.cli import code_refs_cmds

    small = [{"key": "k", "path": "a.py", "line": n, "text": "x"} for n in range(1, 12_001)]
    assert [len(p) for p in code_refs_cmds._parts(small)] == [5_000, 5_000, 2_000]
    big = [{"key": "k", "path": "a.py", "line": n, "text": "y" * 300} for n in range(1, 4_001)]
    parts = code_refs_cmds._parts(big)
    assert len(parts) == 3
    assert sum(len(p) for p in parts) == 4_000
    assert all(len(json.dumps(p)) <= code_refs_cmds.UPLOAD_BYTES + 400 for p in parts)
    assert code_refs_cmds._parts([]) == [[]]


def test_the_scan_in_a_core_install_names_the_extra(tmp_path: Path) -> None:
    from tests.install.venvs import make_venv

    venv = make_venv(tmp_path / "core", ())
    done = venv.run("code-refs", "scan", str(tmp_path), "--keys", "/dev/null")
    assert done.returncode == 2
    assert "pip install 'lockgate[cli]'" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_scan_runs_in_a_cli_install(tmp_path: Path) -> None:
    from tests.install.venvs import make_venv

    venv = make_venv(tmp_path / "cli", ("cli",))
    tree = write_tree(tmp_path / "repo")
    keys = tmp_path / "keys.txt"
    keys.write_text("checkout\nrenewal-banner\ncheckout-v2\n")
    done = venv.run("code-refs", "scan", str(tree), "--keys", str(keys), "--json")
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)["references"]) == 12
