"""``lockgate webhook …`` against a real ``lockgate serve`` and a real receiver process."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lockgate.cli.errors import EXIT_INVALID
from lockgate.cli.main import main
from tests.cli.lockgate_server import Server, running_server
from tests.delivery.webhook_receivers import Receiver, receiver

LOCAL = ("--webhook-allow-private-targets", "--webhook-poll-seconds", "1")


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str

    @property
    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("lockgate"), extra=LOCAL) as running:
        yield running


@pytest.fixture
def hook(tmp_path: Path) -> Iterator[Receiver]:
    with receiver(tmp_path / "receiver") as running:
        yield running


@pytest.fixture
def cli(server: Server, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Any:
    monkeypatch.setenv("LOCKGATE_URL", server.url)
    monkeypatch.setenv("LOCKGATE_TOKEN", server.token)

    def run(*argv: str) -> Run:
        code = main(list(argv))
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


def test_subscribe_receive_list_rotate_and_delete(cli: Any, hook: Receiver) -> None:
    project = f"p-{uuid.uuid4().hex[:10]}"
    assert cli("projects", "create", project).code == 0
    assert cli("envs", "create", project, "production").code == 0
    created = cli(
        "webhook", "create", project, "ops", "--endpoint", hook.url, "--event", "behavior.changed",
        "--env", "production", "--json",
    )  # fmt: skip
    assert created.code == 0, created.err
    hook.trust([created.json["secret"]])
    assert cli("flags", "create", project, "agent", "--kind", "boolean").code == 0
    # creating a flag configures it in every environment: behavior.changed, signed
    [request] = hook.wait_for(1)
    assert request["verified"] == [True]
    listed = cli("webhook", "list", project)
    assert "ops" in listed.out
    assert hook.url in listed.out
    deliveries = cli("webhook", "deliveries", project, "ops", "--json").json["items"]
    assert [d["state"] for d in deliveries] == ["delivered"]
    rotated = cli("webhook", "rotate-secret", project, "ops", "--reason", "drill")
    assert rotated.code == 0
    assert "secret: whsec_" in rotated.out
    disabled = cli("webhook", "update", project, "ops", "--disable", "--json")
    assert disabled.json["enabled"] is False
    replayed = cli("webhook", "replay", project, "ops", "--all-failed")
    assert replayed.out.strip() == "queued 0 delivery(ies) again"
    assert cli("webhook", "delete", project, "ops", "--reason", "done").code == 0
    assert cli("webhook", "show", project, "ops").code != 0


def test_an_unknown_event_type_is_named(cli: Any, hook: Receiver) -> None:
    project = f"p-{uuid.uuid4().hex[:10]}"
    assert cli("projects", "create", project).code == 0
    bad = cli("webhook", "create", project, "ops", "--endpoint", hook.url, "--event", "nope")
    assert bad.code == EXIT_INVALID
    assert "event_types[0]" in bad.err
