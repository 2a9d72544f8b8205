"""The CLI tests' shared fixtures: one real ``lockgate serve`` per module and the CLI run
in-process against it (modules that need another server define their own)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lockgate.cli.main import main
from tests.cli.lockgate_server import Cli, Run, Server, running_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("lockgate")) as running:
        yield running


@pytest.fixture
def cli(server: Server, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Cli:
    monkeypatch.setenv("LOCKGATE_URL", server.url)
    monkeypatch.setenv("LOCKGATE_TOKEN", server.token)

    def run(*argv: str) -> Run:
        code = main(list(argv))
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run
