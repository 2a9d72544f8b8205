"""Release notes and exposure, from configurations and audit entries (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from lockgate.reports.release_notes import describe_serving, exposure_share, release_note

BASE: dict[str, Any] = {"on": True, "off_variation": "off", "targets": [], "rules": []}


@pytest.mark.parametrize(
    ("config", "share", "text"),
    [
        (None, 0.0, "not configured"),
        (BASE | {"on": False, "default": {"variation": "full"}}, 0.0, "off: everyone gets off"),
        (BASE | {"killed": True, "default": {"variation": "full"}}, 0.0, "killed: everyone gets"),
        (BASE | {"default": {"variation": "full"}}, 1.0, "everyone else gets full"),
        (BASE | {"default": {"variation": "fallback"}}, 0.0, "everyone else gets fallback"),
        (
            BASE | {"default": {"split": [{"variation": "full", "weight": 25_000},
                                          {"variation": "off", "weight": 75_000}]}},
            0.25,
            "a split (full 25 %, off 75 %)",
        ),
        (
            BASE | {"default": {"variation": "off"},
                    "rules": [{"id": "corp", "serve": {"variation": "draft_only"}}],
                    "targets": [{"variation": "full", "values": ["a", "b"]}]},
            0.0,
            "2 targeted context(s) get full; rule corp gets draft_only; everyone else gets off",
        ),
    ],
)  # fmt: skip
def test_exposure_and_who_gets_what(config: Any, share: float, text: str) -> None:
    assert exposure_share(config) == share
    assert text in describe_serving(config)


def test_a_note_from_an_approved_change() -> None:
    entry = {
        "seq": 7,
        "ts": "2026-12-05T10:00:00.000000Z",
        "action": "flag:configured",
        "environment": "production",
        "actor_name": "admin",
        "reason": "first exposure",
        "changes": [
            {"path": "default.variation", "old": "off", "new": "observe"},
            {"path": "version", "old": 1, "new": 2},
        ],
        "after": BASE | {"default": {"variation": "observe"}},
        "evidence": {
            "policy": {"direction": "expansion", "rule": "posture.high.approvals.protected = 1",
                       "reasons": ["agent: serves more"]},
            "change_request": {"id": 3, "author": "admin", "approved_by": ["ava", "abe"]},
            "guardrail": {"metric": "errors", "estimate": 0.01},
        },
    }  # fmt: skip
    note = release_note(entry)
    assert note["direction"] == "expansion"
    assert note["what"] == "default.variation: 'off' → 'observe'"
    assert note["for_whom"] == "everyone else gets observe"
    assert note["why"] == "first exposure"
    assert note["approval"] == {
        "kind": "change_request",
        "change_request": 3,
        "author": "admin",
        "approved_by": ["ava", "abe"],
        "rule": "posture.high.approvals.protected = 1",
    }
    assert note["evidence"] == {
        "policy_reasons": ["agent: serves more"],
        "other": {"guardrail": {"metric": "errors", "estimate": 0.01}},
    }
    assert "approved by ava, abe (change request 3)" in note["summary"]


def test_a_direct_reduction_and_a_cleanup_decision() -> None:
    kill = {
        "action": "flag:killed",
        "environment": "production",
        "actor_name": "ana",
        "changes": [{"path": "killed", "old": None, "new": True}],
        "after": BASE | {"killed": True, "default": {"variation": "full"}},
        "evidence": {"policy": {"direction": "reduction", "rule": "reversal: applied at once"}},
    }
    note = release_note(kill)
    assert note["direction"] == "reduction"
    assert note["approval"]["kind"] == "direct"
    assert "applied directly by ana under reversal: applied at once" in note["summary"]
    archived = {"action": "flag:archived", "actor_name": "system:cleanup", "changes": []}
    assert release_note(archived)["direction"] == "cleanup"
