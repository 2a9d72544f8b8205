"""The shared vectors (spec/vectors) against the pure engine."""

from __future__ import annotations

import pytest

from lockgate.engine import EvaluationDetail, decode, evaluate, validate
from lockgate.engine.compile import CompiledSnapshot
from tests.spec.vectors import TYPES, Case, ValidationSuite, cases, compare, validation_suites

CASES = cases()


def test_there_are_enough_vectors() -> None:
    assert len(CASES) >= 150


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_engine(case: Case) -> None:
    snapshot = decode(case.snapshot)
    result = evaluate(snapshot, case.flag, case.context, case.default, TYPES[case.type])
    assert compare(case, result.to_dict()) == {}


class Tagged(EvaluationDetail):
    """A host's own result type (the SDK's ``Served`` is one)."""

    __slots__ = ()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_flag_compiled_with_other_results_evaluates_the_same(case: Case) -> None:
    compiled = CompiledSnapshot(decode(case.snapshot))
    flag = compiled.flags.get(case.flag)
    run = compiled.compile_flag(case.flag, Tagged)
    if flag is None or flag.kind is None:  # missing or malformed
        assert run is None
        return
    assert run is not None
    try:
        expected = flag.run(case.context)
    except Exception as exc:  # the same failure, which evaluate() reports as GENERAL
        with pytest.raises(type(exc)):
            run(case.context)
        return
    got = run(case.context)
    assert got == expected
    assert type(got) is Tagged
    assert run(case.context) is got  # shared, like the flag's own results


SUITES = validation_suites()


@pytest.mark.parametrize("suite", SUITES, ids=[s.suite for s in SUITES])
def test_validation(suite: ValidationSuite) -> None:
    found = sorted({p.path for p in validate(decode(suite.snapshot))})
    assert found == sorted(set(suite.problems))
