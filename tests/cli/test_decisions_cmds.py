"""``lockgate decisions``, ``lockgate subject`` and ``lockgate envs privacy`` against a real
``lockgate serve`` process, with records sent as an SDK sends them."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from lockgate.cli.main import main
from tests.cli.lockgate_server import Server, running_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("lockgate")) as running:
        yield running


@pytest.fixture
def cli(server: Server, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Any:
    monkeypatch.setenv("LOCKGATE_URL", server.url)
    monkeypatch.setenv("LOCKGATE_TOKEN", server.token)

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


@pytest.fixture
def project(server: Server, cli: Any) -> str:
    """A project whose ``prod`` environment holds three records (two of ``alice``)."""
    key = f"p-{uuid.uuid4().hex[:10]}"
    assert cli("projects", "create", key)[0] == 0
    assert cli("envs", "create", key, "prod")[0] == 0
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {server.token}"}
    ) as http:
        url = f"/api/v1/projects/{key}/environments/prod/sdk-keys"
        sdk_key = http.post(url, json={"kind": "server"}).json()["key"]
        records = [
            _record("alice", "kill_fallback", "KILLED", "2026-12-01T10:00:00Z"),
            _record("alice", "denied", "RULE_MATCH", "2026-12-02T10:00:00Z"),
            _record("bob", "kill_fallback", "KILLED", "2026-12-03T10:00:00Z"),
        ]
        sent = http.post(
            "/sdk/v1/decisions",
            json={"records": records},
            headers={"Authorization": f"Bearer {sdk_key}"},
        )
        assert sent.status_code == 202, sent.text
    return key


def _record(subject: str, kind: str, reason: str, at: str) -> dict[str, Any]:
    return {
        "kind": kind,
        "flag": "agent",
        "variation": "off",
        "reason": reason,
        "context": {"key": subject},
        "at": at,
    }


def test_decisions_list_filters_and_prints_a_table(cli: Any, project: str) -> None:
    code, out, err = cli("decisions", "list", project, "--env", "prod", "--kind", "kill_fallback")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["DECIDED", "KIND", "BEHAVIOR"]
    assert [line.split()[-2] for line in lines[1:]] == ["bob", "alice"]  # newest first
    code, out, _ = cli(
        "decisions", "list", project, "--env", "prod", "--context-key", "alice", "--json"
    )
    assert code == 0
    assert [item["kind"] for item in json.loads(out)["items"]] == ["denied", "kill_fallback"]


def test_decisions_export_writes_json_lines(cli: Any, project: str) -> None:
    code, out, _ = cli(
        "decisions", "export", project, "--env", "prod", "--since", "2026-12-02T00:00:00Z"
    )
    assert code == 0
    assert [json.loads(line)["context_key"] for line in out.splitlines()] == ["alice", "bob"]


def test_a_bad_filter_exits_non_zero_naming_the_field(cli: Any, project: str) -> None:
    code, out, err = cli("decisions", "export", project, "--env", "prod", "--since", "soon")
    assert code != 0
    assert out == ""
    assert "since" in err


def test_subject_export_then_delete(cli: Any, project: str) -> None:
    code, out, _ = cli("subject", "export", project, "alice", "--reason", "access request")
    assert code == 0
    assert len(out.splitlines()) == 2
    code, out, _ = cli("subject", "delete", project, "alice", "--reason", "erasure")
    assert (code, out) == (0, f"deleted 2 records of {_sha('alice')} (prod 2)\n")
    code, out, _ = cli("subject", "export", project, "alice")
    assert (code, out) == (0, "")


def test_envs_privacy_show_tighten_and_loosen(cli: Any, project: str) -> None:
    settings = '{"private_attributes": ["email"]}'
    code, out, _ = cli("envs", "privacy", project, "prod", "--set", settings, "--reason", "x")
    assert code == 0, out
    code, out, _ = cli("envs", "privacy", project, "prod")
    assert json.loads(out) == {"private_attributes": ["email"], "rules": {}}
    code, _, _ = cli("envs", "privacy", project, "prod", "--set", "{}", "--reason", "y")
    assert code == 9  # recording email again needs an approval
    code, _, err = cli("envs", "privacy", project, "prod", "--set", '{"rules": {"a": "zip"}}')
    assert code != 0
    assert "privacy.rules.a" in err


def _sha(key: str) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()
