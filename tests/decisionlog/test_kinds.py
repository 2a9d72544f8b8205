"""Which evaluations are full records (docs/decisions.md)."""

from __future__ import annotations

from typing import Any

import pytest

from lockgate.decisionlog import DecisionKind, evaluation_kind

K = DecisionKind


@pytest.mark.parametrize(
    ("reason", "value", "is_mode", "kind"),
    [
        pytest.param("KILLED", False, False, K.KILL_FALLBACK, id="killed-boolean"),
        pytest.param("INCIDENT", "off", True, K.INCIDENT_FALLBACK, id="incident-mode"),
        pytest.param("EXCLUDED", "off", True, K.EXCLUDED, id="excluded"),
        pytest.param("SPLIT", "approval_required", True, K.APPROVAL_REQUIRED, id="approval-split"),
        pytest.param("RULE_MATCH", "off", True, K.DENIED, id="rule-denies"),
        pytest.param("TARGET_MATCH", "fallback", True, K.DENIED, id="target-fallback"),
        pytest.param("PREREQUISITE_FAILED", "off", True, K.DENIED, id="prerequisite"),
        pytest.param("SPLIT", "off", True, None, id="split-off-counted-only"),
        pytest.param("OFF", "off", True, None, id="switched-off-counted-only"),
        pytest.param("FALLTHROUGH", "off", True, None, id="fallthrough-counted-only"),
        pytest.param("RULE_MATCH", "full", True, None, id="full"),
        pytest.param("RULE_MATCH", "approval_required", False, None, id="string-flag"),
        pytest.param("ERROR", None, True, None, id="error"),
        pytest.param("RULE_MATCH", {"a": 1}, True, None, id="json-value"),
    ],
)
def test_evaluation_kind(reason: str, value: Any, is_mode: bool, kind: DecisionKind | None) -> None:
    assert evaluation_kind(reason, value, is_mode) is kind


@pytest.mark.parametrize(
    ("rule_id", "kind"),
    [
        pytest.param("guardrail-llm-cost-acct-7", K.GUARDRAIL_EXCLUSION, id="guardrail-wrote-it"),
        pytest.param("rollback-eu", K.EXCLUDED, id="operator-rollback"),
        pytest.param(None, K.EXCLUDED, id="no-id"),
    ],
)
def test_an_exclusion_a_guardrail_wrote_is_its_own_kind(
    rule_id: str | None, kind: DecisionKind
) -> None:
    assert evaluation_kind("EXCLUDED", "off", True, rule_id) is kind
    assert evaluation_kind("EXCLUDED", False, False, rule_id) is kind
    # the prefix means nothing for any other reason
    assert evaluation_kind("RULE_MATCH", "full", True, rule_id) is None
