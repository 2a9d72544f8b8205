"""The shared vectors (spec/vectors) against the pure engine."""

from __future__ import annotations

import pytest

from lockgate.engine import decode, evaluate, validate
from tests.spec.vectors import TYPES, Case, ValidationSuite, cases, compare, validation_suites

CASES = cases()


def test_there_are_enough_vectors() -> None:
    assert len(CASES) >= 150


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_engine(case: Case) -> None:
    snapshot = decode(case.snapshot)
    result = evaluate(snapshot, case.flag, case.context, case.default, TYPES[case.type])
    assert compare(case, result.to_dict()) == {}


SUITES = validation_suites()


@pytest.mark.parametrize("suite", SUITES, ids=[s.suite for s in SUITES])
def test_validation(suite: ValidationSuite) -> None:
    found = sorted({p.path for p in validate(decode(suite.snapshot))})
    assert found == sorted(set(suite.problems))
