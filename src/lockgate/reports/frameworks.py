"""Which items of public frameworks the controls in use are relevant to.

This is a reading aid for reviewers, not a compliance claim: lockgate records evidence of
what its controls did; whether that satisfies an item of a framework is for an assessor to
judge. Each entry names the control, the evidence lockgate holds for it, and the items it
is *relevant to*:

- NIST AI Risk Management Framework 1.0 (NIST AI 100-1), subcategories of its functions;
- ISO/IEC 42001:2023, controls of its Annex A;
- OWASP Top 10 for LLM Applications 2025.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

__all__ = ["CONTROLS", "FRAMEWORK_NOTE", "relevant_items"]

FRAMEWORK_NOTE = (
    "Relevant to, not compliant with: this section maps the controls this behavior used to "
    "items of public frameworks as a reading aid. It is evidence of what the controls did, "
    "not a claim that any framework's requirements are met; that judgement belongs to an "
    "assessor."
)

CONTROLS: dict[str, dict[str, Any]] = {
    "contract": {
        "title": "Runtime contract (policy as code, versioned and hashed)",
        "evidence": "contract versions with source hash; explain output per line",
        "nist_ai_rmf": ["GOVERN 1.4", "MAP 3.5"],
        "iso_42001": ["A.6.2.2"],
        "owasp_llm": ["LLM06"],
    },
    "approvals": {
        "title": "Change requests with approvals matched to risk",
        "evidence": "change requests, approvers and the policy rule that required them",
        "nist_ai_rmf": ["GOVERN 1.4", "MAP 3.5"],
        "iso_42001": ["A.3.2", "A.6.2.5"],
        "owasp_llm": ["LLM06"],
    },
    "authority_modes": {
        "title": "Authority modes (observe, draft only, approval required, full)",
        "evidence": "the mode served per environment over time",
        "nist_ai_rmf": ["MAP 3.5", "MANAGE 2.4"],
        "iso_42001": ["A.6.2.5", "A.9.4"],
        "owasp_llm": ["LLM06"],
    },
    "runtime_approvals": {
        "title": "Runtime approval of single actions by people",
        "evidence": "each request, its context (redacted) and who decided it",
        "nist_ai_rmf": ["MAP 3.5"],
        "iso_42001": ["A.3.2", "A.9.4"],
        "owasp_llm": ["LLM06"],
    },
    "kill_switch": {
        "title": "Kill switch and targeted rollback",
        "evidence": "kills, restores, exclusions and their reasons, applied at once",
        "nist_ai_rmf": ["MANAGE 2.4"],
        "iso_42001": ["A.6.2.6"],
        "owasp_llm": ["LLM06", "LLM10"],
    },
    "incident_mode": {
        "title": "Incident mode",
        "evidence": "incidents covering the behavior, their scope and duration",
        "nist_ai_rmf": ["MANAGE 2.4", "MANAGE 4.1", "MANAGE 4.3"],
        "iso_42001": ["A.6.2.6"],
        "owasp_llm": ["LLM06"],
    },
    "audit_chain": {
        "title": "Hash-chained, signed audit log",
        "evidence": "the chain's verification result for the report's range",
        "nist_ai_rmf": ["GOVERN 1.4", "MANAGE 4.1"],
        "iso_42001": ["A.6.2.8"],
        "owasp_llm": [],
    },
    "decision_statistics": {
        "title": "Decisions observed at runtime",
        "evidence": "evaluation counts per variation and reason reported by SDKs",
        "nist_ai_rmf": ["MEASURE 2.4"],
        "iso_42001": ["A.6.2.6", "A.6.2.8"],
        "owasp_llm": [],
    },
    "guardrails": {
        "title": "Guardrails on runtime signals, with automatic reductions",
        "evidence": "guardrail states, breaches with their numbers and the test used, and the "
        "automatic actions taken",
        "nist_ai_rmf": ["MEASURE 2.4", "MANAGE 2.4"],
        "iso_42001": ["A.6.2.6"],
        "owasp_llm": ["LLM06", "LLM10"],
    },
    "staged_rollout": {
        "title": "Staged rollout advanced only while guardrails are healthy",
        "evidence": "each stage's advance, pause and hold with the guardrail states behind it",
        "nist_ai_rmf": ["MANAGE 2.4", "MEASURE 2.4"],
        "iso_42001": ["A.6.2.5"],
        "owasp_llm": ["LLM06"],
    },
    "decision_log": {
        "title": "Decision records of denied, approval-required and fallback decisions",
        "evidence": "counts per kind of the full records SDKs sent (redacted contexts)",
        "nist_ai_rmf": ["MEASURE 2.4", "MANAGE 4.1"],
        "iso_42001": ["A.6.2.8"],
        "owasp_llm": ["LLM06"],
    },
}

FRAMEWORKS = {
    "nist_ai_rmf": "NIST AI RMF 1.0",
    "iso_42001": "ISO/IEC 42001:2023 Annex A",
    "owasp_llm": "OWASP Top 10 for LLM Applications 2025",
}


def relevant_items(in_use: Collection[str]) -> list[dict[str, Any]]:
    """The mapping rows for the controls in ``in_use`` (keys of :data:`CONTROLS`)."""
    return [{"control": key, **CONTROLS[key]} for key in CONTROLS if key in in_use]
