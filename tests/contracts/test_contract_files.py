"""Contract files: the article's example as written, executable variants, broken files
(each error with its line and column), explain, schema and enforcement — no server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lockgate.contracts import (
    check_config,
    contract_schema,
    desired_config,
    export_contract,
    read_contract,
)
from lockgate.contracts.model import EnvironmentState
from lockgate.control.contract_yaml import check_contract, explain_contract, load

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = "ai_generated_software_control"


def _text(name: str) -> str:
    return (FIXTURES / name).read_text()


def test_the_article_example_is_accepted_as_written() -> None:
    result = check_contract(_text("article.yaml"), "article.yaml")
    assert result == {
        "file": "article.yaml",
        "valid": True,
        "behavior": None,
        "hash": result["hash"],
        "problems": [],
    }
    contract = load(_text("article.yaml")).contract
    # YAML 1.1 would read the unquoted `- off` as false: it stays the mode "off".
    assert contract.allowed_modes == ("off", "observe", "draft_only", "approval_required", "full")
    assert contract.risk_level == "medium"
    assert contract.default_state == "off"
    assert contract.first_audience is not None
    assert contract.first_audience.description == "internal users"
    assert next(g.metric for g in contract.guardrails) == "workflow_error_rate"
    assert contract.cleanup is not None
    assert contract.cleanup.after is None


def test_explain_traces_every_line_of_the_article() -> None:
    explained = explain_contract(_text("article.yaml"))
    lines = {t["line"] for t in explained["lines"]}
    source_lines = _text("article.yaml").splitlines()
    assert lines == set(range(1, len(source_lines) + 1))
    unenforced = {t["line"]: t["field"] for t in explained["unenforced"]}
    assert unenforced[6] == "first_audience"
    assert unenforced[14] == "guardrails[0]"
    assert unenforced[19] == "approval_required_when[0]"
    assert unenforced[22] == "rollback_action"
    assert unenforced[25] == "audit_sources[1]"
    assert 27 not in unenforced  # the article's cleanup words map to a rule
    statuses = {t["field"]: t["status"] for t in explained["lines"]}
    assert statuses["allowed_modes"] == "enforced"
    assert statuses["risk_level"] == "enforced"
    assert statuses["audit_sources[0]"] == "recorded"
    assert statuses["cleanup_rule"] == "enforced"


def test_explain_of_the_executable_contract() -> None:
    explained = explain_contract(_text("executable.yaml"))
    by_field: dict[str, Any] = {}
    for trace in explained["lines"]:
        by_field.setdefault(trace["field"], trace)
    assert by_field["first_audience"]["status"] == "enforced"
    assert by_field["guardrails[0]"]["status"] == "enforced"
    assert "guardrail cycle" in by_field["guardrails[0]"]["by"]
    assert by_field["rollout_stages[0]"]["status"] == "enforced"
    assert by_field["approval_required_when[0]"]["status"] == "enforced"
    assert by_field["approval_required_when[2]"]["status"] == "declared"
    assert by_field["rollback_action"]["status"] == "enforced"
    assert by_field["audit_sources[1]"]["status"] == "recorded"
    assert by_field["cleanup_rule"]["status"] == "enforced"
    assert "2 healthy review windows" in by_field["cleanup_rule"]["by"]
    assert by_field["environments.production"]["status"] == "enforced"


BROKEN = [
    ("wrong_types.yaml", f"{ROOT}.risk_level", 4, 15, "must be one of low, medium"),
    ("wrong_types.yaml", f"{ROOT}.allowed_modes", 5, 18, "must be a list"),
    ("unknown_mode.yaml", f"{ROOT}.allowed_modes[1]", 7, 7, "unknown value 'turbo'"),
    ("duplicate_keys.yaml", f"{ROOT}.owner", 5, 3, "duplicate key"),
    (
        "fallback_outside.yaml",
        f"{ROOT}.rollback_action.variation",
        8,
        16,
        "fallback 'fallback' is outside the allowed_modes",
    ),
    (
        "audience_without_segment.yaml",
        f"{ROOT}.first_audience",
        6,
        19,
        "names no segment or clauses",
    ),
    ("syntax_error.yaml", "(file)", 4, 16, "YAML syntax error"),
    ("cleanup_rule.yaml", f"{ROOT}.cleanup_rule.review_window", 10, 20, "a duration like 7d"),
    ("cleanup_rule.yaml", f"{ROOT}.cleanup_rule.days", 8, 5, "required (1 or more)"),
]


@pytest.mark.parametrize(
    ("name", "field", "line", "column", "message"), BROKEN, ids=[f"{b[0]}:{b[1]}" for b in BROKEN]
)
def test_broken_files_name_the_field_line_and_column(
    name: str, field: str, line: int, column: int, message: str
) -> None:
    result = check_contract(_text(f"broken/{name}"), name)
    assert result["valid"] is False
    found = [p for p in result["problems"] if p["field"] == field]
    assert found, result["problems"]
    assert (found[0]["line"], found[0]["column"]) == (line, column)
    assert message in found[0]["message"]


def test_each_broken_file_reports_only_its_errors() -> None:
    for name in {b[0] for b in BROKEN}:
        expected = sorted((b[1], b[2], b[3]) for b in BROKEN if b[0] == name)
        problems = check_contract(_text(f"broken/{name}"), name)["problems"]
        assert sorted((p["field"], p["line"], p["column"]) for p in problems) == expected, name


@pytest.mark.parametrize(
    ("source", "field"),
    [
        ("", "(file)"),
        ("- a\n- b\n", "(file)"),
        ("other: 1\n", "other"),
        (f"{ROOT}:\n  behavior: x\n", f"{ROOT}.owner"),
        (f"{ROOT}: [1]\n", ROOT),
        (f"{ROOT}:\n  behaviour: x\n", f"{ROOT}.behaviour"),
        (f"{ROOT}:\n  kind: chatbot\n", f"{ROOT}.kind"),
        (f"{ROOT}:\n  guardrails: [{{metric: m, window: soon}}]\n", f"{ROOT}.guardrails[0].window"),
        (f"{ROOT}:\n  audit_sources: [{{ticket: nope}}]\n", f"{ROOT}.audit_sources[0].ticket"),
        (
            f"{ROOT}:\n  first_audience: {{clauses: [{{attribute: a, op: near, values: [1]}}]}}\n",
            f"{ROOT}.first_audience.clauses[0].op",
        ),
        (
            f"{ROOT}:\n  environments: {{prod: {{state: everyone}}}}\n",
            f"{ROOT}.environments.prod.mode",
        ),
        ("a: &x [1]\nb: *y\n", "(file)"),
        ("a: &x [1]\nb: *x\n", "(file)"),
        ("[" * 5000 + "]" * 5000, "(file)"),
        ("- " * 5000 + "x\n", "(file)"),
        ("? [a, b]\n: c\n", "(file)"),
    ],
)
def test_more_bad_input_is_an_error_never_a_crash(source: str, field: str) -> None:
    result = check_contract(source, "f.yaml")
    assert result["valid"] is False
    assert field in [p["field"] for p in result["problems"]], result["problems"]
    for problem in result["problems"]:
        assert problem["line"] >= 1
        assert problem["column"] >= 1


def test_free_form_notes_are_kept_and_reported_unenforced() -> None:
    source = _text("article.yaml") + '  x-review: "weekly with support"\n'
    explained = explain_contract(source)
    assert explained["unenforced"][-1]["field"] == "x-review"


def test_desired_configuration_caps_contexts_under_an_approval_condition() -> None:
    contract = load(_text("executable.yaml")).contract
    config = {"on": False, "off_variation": "off", "rules": [], "default": {"variation": "off"}}
    wanted = desired_config(contract, EnvironmentState("first_audience", "full", 1), config)
    rules = wanted["rules"]
    audience = {"op": "segment_match", "values": ["internal-users"]}
    assert [r["id"] for r in rules] == [
        "contract-approval-1",
        "contract-approval-2",
        "contract-first-audience",
    ]
    assert rules[0]["clauses"] == [
        audience,
        {"attribute": "plan", "op": "equals", "values": ["enterprise"]},
    ]
    assert rules[0]["serve"] == {"variation": "approval_required"}
    assert rules[1]["clauses"] == [
        audience,
        {"op": "segment_match", "values": ["regions-under-review"]},
    ]
    assert wanted["off_variation"] == "fallback"
    # Rules a team added by hand are kept; contract rules are replaced.
    mine = {"id": "mine", "clauses": [], "serve": {"variation": "off"}}
    again = desired_config(
        contract, EnvironmentState("off", None, 1), {**config, **wanted, "rules": [*rules, mine]}
    )
    assert again["rules"] == [mine]
    assert again["on"] is False


def test_enforcement_checks_modes_and_the_first_step() -> None:
    rules = load(_text("executable.yaml")).contract.rules()
    dark = {"on": False, "off_variation": "off", "rules": [], "default": {"variation": "off"}}
    everyone = {**dark, "on": True, "default": {"variation": "observe"}}
    why = check_config(rules, dark, everyone)
    assert why is not None
    assert "first audience" in why
    assert "line 8" in why
    inner = {
        **dark,
        "on": True,
        "rules": [{"id": "x", "clauses": rules["first_audience"], "serve": {"variation": "full"}}],
    }
    assert check_config(rules, dark, inner) is None
    # Once the first audience has it, widening is the posture's business.
    assert check_config(rules, inner, everyone) is None
    narrow = {**rules, "allowed_modes": ["off", "observe"]}
    why = check_config(narrow, inner, {**inner, "off_variation": "fallback"})
    assert why is not None
    assert "'fallback', 'full'" in why
    assert check_config(None, dark, everyone) is None


def test_export_round_trips_through_validate() -> None:
    contract = load(_text("executable.yaml")).contract
    flag = {
        "key": "renewal-recommendations",
        "name": "Generated renewal recommendation workflow",
        "kind": "mode",
        "behavior_kind": "backend_workflow",
        "owner": "growth-platform",
        "risk_tier": "medium",
        "variations": [],
        "environments": {
            "staging": {
                "on": True,
                "rules": [{"id": "contract-first-audience", "serve": {"variation": "observe"}}],
            },
            "production": {"on": False},
            "qa": {"on": True, "default": {"split": []}},
        },
    }
    text = export_contract(flag, contract.rules())
    result = check_contract(text, "exported.yaml")
    assert result["valid"], result["problems"]
    again = load(text).contract
    assert again.allowed_modes == contract.allowed_modes
    assert again.first_audience is not None
    assert again.first_audience.segment == "internal-users"
    assert again.environments["staging"].mode == "observe"
    assert again.environments["production"].state == "off"
    assert "qa" not in again.environments


@pytest.mark.parametrize(
    "tool",
    [
        {"key": "refund", "risk": "irreversible", "description": 'say "no"', "budget": None},
        {"key": "search", "risk": "read", "description": "", "budget": None},
        {
            "key": "mail",
            "risk": "external",
            "description": "one line\nand another: with a colon",
            "budget": {"calls": 5, "window": 60, "per": "account"},
        },
    ],
    ids=["quoted-description", "no-description", "budget-and-multiline"],
)
def test_export_writes_the_tools_as_the_contract_reads_them(tool: dict[str, Any]) -> None:
    flag = {"key": "agent", "kind": "mode", "risk_tier": "low", "environments": {}}
    text = export_contract(flag, {"allowed_modes": ["off", "full"]}, [tool | {"deny": ["x"]}])
    result = check_contract(text, "exported.yaml")
    assert result["valid"], result["problems"]
    (declared,) = load(text).contract.tools
    assert (declared.key, declared.risk, declared.description, declared.budget) == (
        tool["key"],
        tool["risk"],
        tool["description"],
        tool["budget"],
    )


def test_the_schema_lists_every_field() -> None:
    schema = contract_schema()
    body = schema["properties"][ROOT]
    assert set(body["properties"]) >= {
        "behavior", "owner", "risk_level", "default_state", "first_audience", "allowed_modes",
        "guardrails", "approval_required_when", "rollback_action", "audit_sources",
        "cleanup_rule", "key", "kind", "environments", "rollout_stages",
    }  # fmt: skip
    assert read_contract is not None
