"""The shared vectors (spec/vectors) through the networked SDK, synced from a live server.

One real ``lockgate serve`` process for the module (SQLite in a temporary directory; the
SDK streams over real sockets, which ``TestClient`` cannot serve). Each suite's snapshot is
loaded through the management API into a project of its own (:mod:`tests.spec.server`, as
for the server vectors), a server SDK key is created for it, and a
``lockgate.sdk.Client(key, url)`` syncs that environment over the stream. Every case is
then evaluated locally by that client with the accessor for the case's type
(``typed_detail`` plus ``bool_variation`` / ``string_variation`` / ``number_variation`` /
``json_variation``, ``mode_detail`` plus ``mode``; ``detail`` plus ``variation`` for
untyped cases) and compared with the vector.

As for the server vectors, ``flag_version`` is not compared (the server assigns
configuration versions), and cases whose flag the server refused at write time are
checked the same way as there: a 422 naming fields, and only for flags the engine
evaluates to ``MALFORMED_FLAG``. The SDK must not serve such a flag at all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, replace
from typing import Any

import httpx2
import pytest

from lockgate.engine import EvaluationDetail, FlagKind, Mode
from lockgate.sdk import Client
from tests.cli.lockgate_server import Server, running_server
from tests.spec.server import ENVIRONMENT, LoadedSuite, load_suite, suite_snapshots
from tests.spec.vectors import TYPES, Case, cases, compare

CASES = [c for c in cases() if c.snapshot.get("flags")]
READY_TIMEOUT = 30.0

Accessor = Callable[[Client, Case], Any]
VALUE_ACCESSORS: dict[str, Accessor] = {
    "boolean": lambda client, c: client.bool_variation(c.flag, c.context, c.default),
    "string": lambda client, c: client.string_variation(c.flag, c.context, c.default),
    "number": lambda client, c: client.number_variation(c.flag, c.context, c.default),
    "json": lambda client, c: client.json_variation(c.flag, c.context, c.default),
}


@dataclass
class SyncedSuite:
    loaded: LoadedSuite
    client: Client


class SdkSuites:
    """One live server; each suite loaded into its own project on first use, with a client."""

    def __init__(self, server: Server, stack: ExitStack) -> None:
        self.server = server
        self.stack = stack
        self.snapshots = suite_snapshots()
        self.api = stack.enter_context(
            httpx2.Client(
                base_url=server.url,
                headers={"Authorization": f"Bearer {server.token}"},
                timeout=30.0,
            )
        )
        self.synced: dict[str, SyncedSuite] = {}

    def get(self, suite: str) -> SyncedSuite:
        if suite not in self.synced:
            self.synced[suite] = self._sync(suite)
        return self.synced[suite]

    def _sync(self, suite: str) -> SyncedSuite:
        project = f"spec-{suite}"
        loaded = load_suite(self.api, self.snapshots[suite], project)
        response = self.api.post(
            f"/api/v1/projects/{project}/environments/{ENVIRONMENT}/sdk-keys",
            json={"kind": "server", "name": "sdk vectors"},
        )
        assert response.status_code == 201, response.text
        client = Client(response.json()["key"], self.server.url, events=False)
        self.stack.callback(client.close)
        assert client.wait_until_ready(READY_TIMEOUT), f"client state {client.state}"
        return SyncedSuite(loaded, client)


@pytest.fixture(scope="module")
def sdk_suites(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SdkSuites]:
    with ExitStack() as stack:
        server = stack.enter_context(running_server(tmp_path_factory.mktemp("sdk-vectors")))
        yield SdkSuites(server, stack)


def _evaluate(client: Client, case: Case) -> EvaluationDetail:
    """The case through the typed accessor for its type; the value accessor must agree."""
    kind = TYPES[case.type]
    if kind is None:
        detail = client.detail(case.flag, case.context, case.default)
        value = client.variation(case.flag, case.context, case.default)
    elif kind is FlagKind.MODE:
        default = Mode(case.default)
        detail = client.mode_detail(case.flag, case.context, default)
        mode = client.mode(case.flag, case.context, default)
        assert mode is (Mode.parse(detail.value) or default)
        return detail
    else:
        detail = client.typed_detail(case.flag, case.context, case.default, kind)
        value = VALUE_ACCESSORS[case.type](client, case)
    assert value == detail.value
    assert type(value) is type(detail.value)
    return detail


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_sdk(case: Case, sdk_suites: SdkSuites) -> None:
    suite = sdk_suites.get(case.suite)
    refusal = suite.loaded.refused_flags.get(case.flag)
    if refusal is not None:
        assert case.expect.get("error_code") == "MALFORMED_FLAG", (
            f"the server refused a flag the engine serves: {refusal}"
        )
        assert refusal.status == 422, refusal
        assert refusal.fields, refusal
        assert all(refusal.fields), refusal
        assert case.flag not in suite.client.snapshot.flags, "the SDK got a refused flag"
        return
    assert case.expect.get("error_code") != "MALFORMED_FLAG", "the server stored a malformed flag"
    expect = replace(case, expect={k: v for k, v in case.expect.items() if k != "flag_version"})
    assert compare(expect, _evaluate(suite.client, case).to_dict()) == {}


def test_every_suite_synced_its_flags(sdk_suites: SdkSuites) -> None:
    """The SDK holds exactly the flags the server accepted, for every suite with cases."""
    assert {c.suite for c in CASES} == set(sdk_suites.snapshots)
    for name, snapshot in sdk_suites.snapshots.items():
        suite = sdk_suites.get(name)
        accepted = set(snapshot["flags"]) - set(suite.loaded.refused_flags)
        assert set(suite.client.snapshot.flags) == accepted, name
