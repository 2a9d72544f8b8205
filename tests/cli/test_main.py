"""The ``lockgate`` command: eval, validate, errors and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import lockgate
from lockgate.cli.main import main
from tests.engine.factories import JSON, bool_flag, clause, flags_doc, rule, string_flag

VERSION_LINE = f"lockgate {lockgate.__version__}"


def write(tmp_path: Path, doc: JSON | str, name: str = "snapshot.json") -> str:
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc), encoding="utf-8")
    return str(path)


@pytest.fixture
def snapshot(tmp_path: Path) -> str:
    flag = string_flag(
        "checkout",
        version=7,
        variations=[{"key": "on", "value": "on-value"}, {"key": "off", "value": "off-value"}],
        rules=[rule("corp", clause("email", "ends_with", "@corp.example"), serve="on")],
        default={"variation": "off"},
    )
    return write(tmp_path, flags_doc(flag, bool_flag("kill"), version=3))


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == VERSION_LINE + "\n"


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("usage: lockgate")
    assert "eval" in captured.err
    assert "validate" in captured.err


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["frobnicate"])
    assert exited.value.code == 2
    assert "invalid choice: 'frobnicate'" in capsys.readouterr().err


# -- eval --------------------------------------------------------------------------------


def test_eval_text(snapshot: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "eval",
            "--snapshot",
            snapshot,
            "--flag",
            "checkout",
            "--context",
            '{"key": "u1", "email": "a@corp.example"}',
        ]
    )
    assert code == 0
    assert capsys.readouterr().out.splitlines() == [
        'value:     "on-value"',
        "variation: on",
        "reason:    RULE_MATCH (rule corp)",
        "version:   7",
    ]


def test_eval_text_fallthrough_with_default_context(
    snapshot: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval", "--snapshot", snapshot, "--flag", "kill"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "value:     true",
        "variation: on",
        "reason:    FALLTHROUGH",
        "version:   1",
    ]


def test_eval_json(snapshot: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "eval",
            "--snapshot",
            snapshot,
            "--flag",
            "checkout",
            "--context",
            '{"key": "u1"}',
            "--json",
        ]
    )
    assert code == 0
    assert json.loads(capsys.readouterr().out) == {
        "value": "off-value",
        "variation": "off",
        "reason": "FALLTHROUGH",
        "rule_id": None,
        "error_code": None,
        "flag_version": 7,
    }


def test_eval_unknown_flag(snapshot: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["eval", "--snapshot", snapshot, "--flag", "nope", "--default", '"fallback"'])
    assert code == 1
    assert capsys.readouterr().out.splitlines() == [
        'value:     "fallback"',
        "variation: -",
        "reason:    ERROR (error FLAG_NOT_FOUND)",
        "version:   -",
    ]


def test_eval_unknown_flag_json(snapshot: str, capsys: pytest.CaptureFixture[str]) -> None:
    main(["eval", "--snapshot", snapshot, "--flag", "nope", "--json", "--default", "3"])
    assert json.loads(capsys.readouterr().out) == {
        "value": 3,
        "variation": None,
        "reason": "ERROR",
        "rule_id": None,
        "error_code": "FLAG_NOT_FOUND",
        "flag_version": None,
    }


def test_eval_json_exit_code_matches_text_mode(snapshot: str) -> None:
    assert main(["eval", "--snapshot", snapshot, "--flag", "nope", "--json"]) == 1


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        pytest.param(
            "--context", "{", "lockgate: error: --context: not valid JSON: ", id="context"
        ),
        pytest.param(
            "--default", "nope", "lockgate: error: --default: not valid JSON: ", id="default"
        ),
        pytest.param(
            "--context",
            '["key", "u1"]',
            'lockgate: error: --context: expected a JSON object such as {"key": "user-1"}',
            id="context-not-object",
        ),
        pytest.param(
            "--context",
            "null",
            'lockgate: error: --context: expected a JSON object such as {"key": "user-1"}',
            id="context-null",
        ),
    ],
)
def test_eval_bad_json_argument(
    snapshot: str, option: str, value: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval", "--snapshot", snapshot, "--flag", "checkout", option, value]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(message)
    assert len(captured.err.splitlines()) == 1


def test_eval_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "absent.json"
    assert main(["eval", "--snapshot", str(path), "--flag", "f"]) == 2
    assert (
        capsys.readouterr().err
        == f"lockgate: error: --snapshot: cannot read {path}: no such file\n"
    )


def test_eval_invalid_snapshot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, flags_doc(string_flag(off_variation="zzz")))
    assert main(["eval", "--snapshot", path, "--flag", "f"]) == 3
    captured = capsys.readouterr()
    assert captured.out == ""
    assert (
        captured.err == f"lockgate: error: {path}: flags.f.off_variation: unknown variation 'zzz'\n"
    )


def test_eval_requires_snapshot_and_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["eval", "--flag", "f"])
    assert exited.value.code == 2
    assert "the following arguments are required: --snapshot" in capsys.readouterr().err


# -- validate ----------------------------------------------------------------------------


def test_validate_ok(snapshot: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--snapshot", snapshot]) == 0
    assert capsys.readouterr().out == f"{snapshot}: ok (2 flags, 0 segments, version 3)\n"


def test_validate_ok_json(snapshot: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--snapshot", snapshot, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def _bad_snapshot(tmp_path: Path) -> str:
    return write(
        tmp_path,
        flags_doc(
            string_flag("x", off_variation="zzz"),
            string_flag("y", rules=[rule("r1", clause("age", "lt", "5"))]),
            string_flag("ok"),
        ),
    )


def test_validate_with_problems(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _bad_snapshot(tmp_path)
    assert main(["validate", "--snapshot", path]) == 3
    assert capsys.readouterr().out.splitlines() == [
        f"{path}: flags.x.off_variation: unknown variation 'zzz'",
        f"{path}: flags.y.rules[0].clauses[0].values[0]: expected a number",
    ]


def test_validate_with_problems_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _bad_snapshot(tmp_path)
    assert main(["validate", "--snapshot", path, "--json"]) == 3
    assert json.loads(capsys.readouterr().out) == [
        {"path": "flags.x.off_variation", "message": "unknown variation 'zzz'"},
        {"path": "flags.y.rules[0].clauses[0].values[0]", "message": "expected a number"},
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param("{not json", " is not valid JSON: ", id="invalid-json"),
        pytest.param('{"format": "other"}', ": format: unsupported format 'other'", id="envelope"),
    ],
)
def test_validate_unreadable_snapshot(
    tmp_path: Path, content: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, content)
    assert main(["validate", "--snapshot", path]) == 3
    err = capsys.readouterr().err
    assert err.startswith(f"lockgate: error: {path}")
    assert message in err


def test_validate_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "absent.json"
    assert main(["validate", "--snapshot", str(path)]) == 2
    assert "no such file" in capsys.readouterr().err


def test_validate_a_directory_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", "--snapshot", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        f"lockgate: error: --snapshot: cannot read {tmp_path}: is a directory\n"
    )


# -- installed entry points --------------------------------------------------------------


def test_module_entry_point_runs() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "lockgate.cli.main", "--version"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, VERSION_LINE + "\n", "")


def test_console_script_runs() -> None:
    script = Path(sys.executable).with_name("lockgate")
    assert script.is_file(), (
        f"the lockgate console script is not installed next to {sys.executable}"
    )
    done = subprocess.run(
        [str(script), "--version"], capture_output=True, text=True, check=False, timeout=60
    )
    assert (done.returncode, done.stdout) == (0, VERSION_LINE + "\n")


@pytest.mark.parametrize(
    ("argv", "argument"),
    [
        pytest.param(["tokens", "revoke", ""], "PREFIX", id="tokens-revoke"),
        pytest.param(["sdk-keys", "revoke", "shop", "prod", ""], "PREFIX", id="sdk-keys-revoke"),
        pytest.param(["flags", "show", "", "checkout"], "PROJECT", id="flags-show-project"),
        pytest.param(["members", "remove", "shop", "  "], "USERNAME", id="blank-username"),
    ],
)
def test_an_empty_positional_is_a_usage_error_naming_it(
    argv: list[str], argument: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Nothing listens on port 9: reaching the network would exit 8, not 2.
    with pytest.raises(SystemExit) as exited:
        main([*argv, "--url", "http://127.0.0.1:9", "--token", "t"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert f"error: argument {argument}: must not be empty" in err
    assert err.startswith("usage: lockgate ")
