"""Authority modes: order and every helper, for every mode."""

from __future__ import annotations

import itertools
import json

import pytest

from lockgate.engine import Mode

ORDER = [
    Mode.OFF,
    Mode.FALLBACK,
    Mode.OBSERVE,
    Mode.DRAFT_ONLY,
    Mode.APPROVAL_REQUIRED,
    Mode.FULL,
]
"""The documented authority order, from none to full."""


def test_members_are_exactly_the_documented_modes_in_order() -> None:
    assert list(Mode) == ORDER
    assert [m.value for m in Mode] == [
        "off",
        "fallback",
        "observe",
        "draft_only",
        "approval_required",
        "full",
    ]


@pytest.mark.parametrize(
    ("mode", "rank", "is_active", "allows_drafts", "allows_writes", "needs_approval", "fallback"),
    [
        pytest.param(Mode.OFF, 0, False, False, False, False, False, id="off"),
        pytest.param(Mode.FALLBACK, 1, False, False, False, False, True, id="fallback"),
        pytest.param(Mode.OBSERVE, 2, True, False, False, False, False, id="observe"),
        pytest.param(Mode.DRAFT_ONLY, 3, True, True, False, False, False, id="draft_only"),
        pytest.param(
            Mode.APPROVAL_REQUIRED, 4, True, True, True, True, False, id="approval_required"
        ),
        pytest.param(Mode.FULL, 5, True, True, True, False, False, id="full"),
    ],
)
def test_helpers(
    mode: Mode,
    rank: int,
    is_active: bool,
    allows_drafts: bool,
    allows_writes: bool,
    needs_approval: bool,
    fallback: bool,
) -> None:
    assert mode.rank == rank
    assert mode.is_active is is_active
    assert mode.allows_drafts is allows_drafts
    assert mode.allows_writes is allows_writes
    assert mode.needs_approval is needs_approval
    assert mode.uses_fallback is fallback


def test_only_approval_required_needs_approval() -> None:
    assert [m for m in Mode if m.needs_approval] == [Mode.APPROVAL_REQUIRED]


def test_authority_grows_monotonically_along_the_order() -> None:
    """Once a capability is granted, every higher mode grants it too."""
    for capability in ("is_active", "allows_drafts", "allows_writes"):
        granted = [bool(getattr(m, capability)) for m in ORDER]
        assert granted == sorted(granted), capability


PAIRS = list(itertools.product(ORDER, ORDER))


@pytest.mark.parametrize(
    ("mode", "other"), [pytest.param(a, b, id=f"{a.value}-vs-{b.value}") for a, b in PAIRS]
)
def test_at_least(mode: Mode, other: Mode) -> None:
    assert mode.at_least(other) is (ORDER.index(mode) >= ORDER.index(other))


@pytest.mark.parametrize(
    ("mode", "ceiling"),
    [pytest.param(a, b, id=f"{a.value}-capped-at-{b.value}") for a, b in PAIRS],
)
def test_cap(mode: Mode, ceiling: Mode) -> None:
    expected = mode if ORDER.index(mode) <= ORDER.index(ceiling) else ceiling
    assert mode.cap(ceiling) is expected


@pytest.mark.parametrize(
    ("mode", "ceiling", "expected"),
    [
        pytest.param(Mode.FULL, Mode.DRAFT_ONLY, Mode.DRAFT_ONLY, id="full-lowered"),
        pytest.param(Mode.OBSERVE, Mode.FULL, Mode.OBSERVE, id="observe-unchanged"),
        pytest.param(Mode.FALLBACK, Mode.OFF, Mode.OFF, id="fallback-to-off"),
        pytest.param(
            Mode.APPROVAL_REQUIRED, Mode.APPROVAL_REQUIRED, Mode.APPROVAL_REQUIRED, id="equal"
        ),
    ],
)
def test_cap_examples(mode: Mode, ceiling: Mode, expected: Mode) -> None:
    assert mode.cap(ceiling) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("off", Mode.OFF, id="off"),
        pytest.param("fallback", Mode.FALLBACK, id="fallback"),
        pytest.param("observe", Mode.OBSERVE, id="observe"),
        pytest.param("draft_only", Mode.DRAFT_ONLY, id="draft_only"),
        pytest.param("approval_required", Mode.APPROVAL_REQUIRED, id="approval_required"),
        pytest.param("full", Mode.FULL, id="full"),
        pytest.param(Mode.FULL, Mode.FULL, id="a-mode-member"),
        pytest.param("FULL", None, id="upper-case"),
        pytest.param(" full", None, id="leading-space"),
        pytest.param("turbo", None, id="unknown-name"),
        pytest.param("", None, id="empty-string"),
        pytest.param(None, None, id="none"),
        pytest.param(True, None, id="bool"),
        pytest.param(5, None, id="int-rank"),
        pytest.param(["full"], None, id="list"),
        pytest.param({"mode": "full"}, None, id="dict"),
    ],
)
def test_parse(value: object, expected: Mode | None) -> None:
    assert Mode.parse(value) is expected


def test_modes_are_strings_written_as_their_wire_values() -> None:
    assert isinstance(Mode.DRAFT_ONLY, str)
    assert f"{Mode.APPROVAL_REQUIRED}" == "approval_required"
    assert json.dumps([Mode.FULL, Mode.OFF]) == '["full", "off"]'
    assert Mode("observe") is Mode.OBSERVE
