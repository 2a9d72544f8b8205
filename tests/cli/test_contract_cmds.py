"""``lockgate contract schema|validate|explain`` run locally: formats and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema_rs
import pytest

from lockgate.cli.main import main
from lockgate.contracts import contract_schema, plain
from lockgate.control.contract_yaml import load_contract_tree

FIXTURES = Path(__file__).resolve().parents[1] / "contracts" / "fixtures"
ARTICLE = str(FIXTURES / "article.yaml")
EXECUTABLE = str(FIXTURES / "executable.yaml")
UNKNOWN_MODE = str(FIXTURES / "broken" / "unknown_mode.yaml")


def test_validate_prints_ok_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["contract", "validate", ARTICLE, EXECUTABLE]) == 0
    out = capsys.readouterr().out
    assert f"{ARTICLE}: ok (behavior -)" in out
    assert f"{EXECUTABLE}: ok (behavior renewal-recommendations)" in out


def test_validate_names_file_line_and_column(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["contract", "validate", ARTICLE, UNKNOWN_MODE]) == 3
    out = capsys.readouterr().out
    assert (
        f"{UNKNOWN_MODE}:7:7: error: ai_generated_software_control.allowed_modes[1]: "
        "unknown value 'turbo'"
    ) in out


def test_validate_github_annotations(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["contract", "validate", "--format", "github", UNKNOWN_MODE]) == 3
    [line] = capsys.readouterr().out.splitlines()
    assert line.startswith(f"::error file={UNKNOWN_MODE},line=7,col=7,title=lockgate contract::")


def test_validate_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["contract", "validate", "--format", "json", ARTICLE, UNKNOWN_MODE]) == 3
    results = json.loads(capsys.readouterr().out)
    assert [r["valid"] for r in results] == [True, False]
    assert results[1]["problems"][0]["line"] == 7


def test_validate_of_a_missing_file_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["contract", "validate", str(tmp_path / "nope.yaml")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_explain_lists_lines_and_what_nothing_enforces(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["contract", "explain", ARTICLE]) == 0
    out = capsys.readouterr().out
    assert "unenforced  first_audience" in out
    assert "line(s) nothing enforces: 6, 13, 14," in out
    assert main(["contract", "explain", UNKNOWN_MODE]) == 3
    assert ":7:7: error:" in capsys.readouterr().err


def test_the_schema_accepts_the_fixtures_and_refuses_broken_ones(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["contract", "schema"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == contract_schema()
    validator = jsonschema_rs.validator_for(printed)
    for path in (ARTICLE, EXECUTABLE):
        tree, _ = load_contract_tree(Path(path).read_text())
        assert tree is not None
        assert validator.is_valid(plain(tree)), path
    for name in ("wrong_types", "unknown_mode"):
        tree, _ = load_contract_tree((FIXTURES / "broken" / f"{name}.yaml").read_text())
        assert tree is not None
        assert not validator.is_valid(plain(tree)), name
