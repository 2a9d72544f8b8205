"""The shared vectors (spec/vectors) through the server's evaluation path.

Each suite's snapshot is loaded into a fresh server through the public HTTP API
(:mod:`tests.spec.server`), then every case is evaluated with
``POST /api/v1/projects/{p}/environments/{e}/evaluate``.

Two deliberate differences from the engine runner:

- ``flag_version`` is not compared: the server assigns configuration versions itself
  (1 at creation, +1 per change), so they cannot equal the versions written in the vectors.
- Flags the vectors break on purpose (those the engine evaluates to ``MALFORMED_FLAG``)
  cannot be stored: the API refuses them at write time with 422 naming the field. For
  their cases the test checks that refusal, that only such flags were refused and that
  every such flag was (on the current vectors: 401 cases evaluated, 29 refused).
"""

from __future__ import annotations

import pytest

from tests.spec.conftest import SuiteServers
from tests.spec.vectors import Case, cases, compare

CASES = [c for c in cases() if c.snapshot.get("flags")]


def _expect_without_version(case: Case) -> Case:
    expect = {k: v for k, v in case.expect.items() if k != "flag_version"}
    return Case(
        case.suite, case.id, case.snapshot, case.flag, case.context, case.default, case.type, expect
    )


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_server(case: Case, suite_servers: SuiteServers) -> None:
    suite = suite_servers.get(case.suite)
    refusal = suite.refused_flags.get(case.flag)
    if refusal is not None:
        assert case.expect.get("error_code") == "MALFORMED_FLAG", (
            f"the server refused a flag the engine serves: {refusal}"
        )
        assert refusal.status == 422, refusal
        assert refusal.fields, refusal
        assert all(refusal.fields), refusal
        return
    assert case.expect.get("error_code") != "MALFORMED_FLAG", "the server stored a malformed flag"
    response = suite.evaluate(case.flag, case.context, case.default, case.type)
    assert response.status_code == 200, response.text
    assert compare(_expect_without_version(case), response.json()) == {}


def test_only_suites_with_cases_are_loaded(suite_servers: SuiteServers) -> None:
    assert suite_servers.snapshots
    assert {c.suite for c in CASES} == set(suite_servers.snapshots)
