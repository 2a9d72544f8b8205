"""``lockgate tools``: bad options are refused with a message before anything is sent."""

from __future__ import annotations

import pytest

from lockgate.cli.errors import EXIT_USAGE
from lockgate.cli.main import main

UNREACHABLE = ["--url", "http://127.0.0.1:9"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["register", "shop", "t", "--risk", "read", "--budget", "ten"], "--budget: expected"),
        (["register", "shop", "t", "--risk", "read", "--budget", "a/b"], "whole numbers"),
        (["set", "shop", "t", "--reason", "x"], "nothing to change"),
        (["set", "shop", "t", "--budget", "1/2", "--no-budget"], "exclude each other"),
        (["deny", "shop", "t", "--segment", "s", "--clauses", "[]"], "exclude each other"),
    ],
)
def test_bad_options_exit_with_a_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["tools", *argv, *UNREACHABLE])
    assert code == EXIT_USAGE
    assert message in capsys.readouterr().err


def test_a_bad_risk_class_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["tools", "register", "shop", "t", "--risk", "nuclear", *UNREACHABLE])
    assert exited.value.code == 2
    assert "invalid choice: 'nuclear'" in capsys.readouterr().err
