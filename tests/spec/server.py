"""Loading a vector suite's snapshot into a real server through the public HTTP API.

Segments are created first, then flags, each after what it depends on (segments it
matches, prerequisite flags); objects on a cycle come last, in snapshot order. A flag is
created with ``POST /flags`` (kind, variations, descriptive fields) and configured with
``PATCH /flags/{key}/environments/{env}``. The API validates every write with the engine,
so objects the vectors deliberately break are refused there (422 naming a field); a flag
whose configuration is refused is archived, so that the server never serves a state the
vectors did not describe and flags that depend on it are refused in turn — exactly the
flags the engine evaluates to ``MALFORMED_FLAG``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from httpx2 import Client, Response

from tests.spec.vectors import VECTORS

PROJECT = "spec"
ENVIRONMENT = "test"
REASON = "loaded from spec/vectors"
CONFIG_FIELDS = (
    "off_variation",
    "targets",
    "rules",
    "default",
    "prerequisites",
    "bucket_by",
    "salt",
    "killed",
    "exclusions",
)
DEFINITION_FIELDS = (
    "name",
    "description",
    "owner",
    "risk_tier",
    "lifecycle",
    "tags",
    "client_visible",
)
# Descriptive fields are free-form in the snapshot format but governed by the API, which
# knows only these values; others (the vectors use lifecycle "active") are not sent.
GOVERNED = {
    "risk_tier": ("low", "medium", "high", "restricted"),
    "lifecycle": ("temporary", "permanent"),
}
SEGMENT_FIELDS = ("name", "description", "attribute", "included", "excluded", "rules")


@dataclass(frozen=True)
class Refusal:
    """A write the server refused: which request, its status and problem body."""

    step: str
    status: int
    body: dict[str, Any]

    @property
    def fields(self) -> list[str]:
        return [str(e.get("field", "")) for e in self.body.get("errors", [])]


@dataclass
class LoadedSuite:
    client: Client
    """The management API (a TestClient, or an httpx2 client of a real server)."""
    project: str = PROJECT
    refused_flags: dict[str, Refusal] = field(default_factory=dict)
    refused_segments: dict[str, Refusal] = field(default_factory=dict)

    def evaluate(self, flag: str, context: Any, default: Any, kind: str) -> Response:
        return self.client.post(
            f"/api/v1/projects/{self.project}/environments/{ENVIRONMENT}/evaluate",
            json={"flag": flag, "context": context, "default": default, "type": kind},
        )


def suite_snapshots() -> dict[str, dict[str, Any]]:
    """The snapshot of every suite that has evaluation cases, by suite name."""
    suites = [json.loads(p.read_text()) for p in sorted(VECTORS.glob("*.json"))]
    return {s["suite"]: s["snapshot"] for s in suites if s.get("cases")}


def dependency_order(items: dict[str, Any], deps: Callable[[Any], set[str]]) -> list[str]:
    """Keys of ``items`` with each after its dependencies; keys on a cycle go last."""
    pending = {key: deps(item) & items.keys() for key, item in items.items()}
    ordered: list[str] = []
    while True:
        ready = [k for k, d in pending.items() if not d - set(ordered)]
        if not ready:
            break
        for key in ready:
            ordered.append(key)
            del pending[key]
    return ordered + list(pending)


def _segment_refs(rules: Iterable[Any]) -> set[str]:
    refs: set[str] = set()
    for rule in rules:
        for clause in rule.get("clauses", []) if isinstance(rule, dict) else []:
            if isinstance(clause, dict) and clause.get("op") == "segment_match":
                refs.update(v for v in clause.get("values", []) if isinstance(v, str))
    return refs


def _prerequisites(flag: Any) -> set[str]:
    return {
        p["flag"]
        for p in flag.get("prerequisites", [])
        if isinstance(p, dict) and isinstance(p.get("flag"), str)
    }


def _refusal(step: str, response: Response) -> Refusal:
    body = response.json()
    return Refusal(step, response.status_code, body if isinstance(body, dict) else {})


def _create_segment(suite: LoadedSuite, key: str, segment: dict[str, Any]) -> None:
    body = {name: segment[name] for name in SEGMENT_FIELDS if name in segment}
    response = suite.client.post(
        f"/api/v1/projects/{suite.project}/segments", json={"key": key, **body, "reason": REASON}
    )
    if response.status_code != 201:
        suite.refused_segments[key] = _refusal("POST segment", response)


def _create_flag(suite: LoadedSuite, key: str, flag: dict[str, Any]) -> None:
    definition = {
        name: flag[name]
        for name in DEFINITION_FIELDS
        if name in flag and (name not in GOVERNED or flag[name] in GOVERNED[name])
    }
    definition |= {"key": key, "kind": flag.get("kind"), "variations": flag.get("variations")}
    flags_url = f"/api/v1/projects/{suite.project}/flags"
    response = suite.client.post(flags_url, json={**definition, "reason": REASON})
    if response.status_code != 201:
        suite.refused_flags[key] = _refusal("POST flag", response)
        return
    config = {name: flag[name] for name in CONFIG_FIELDS if name in flag}
    config["on"] = flag.get("on", True)
    response = suite.client.patch(
        f"{flags_url}/{key}/environments/{ENVIRONMENT}",
        json={**config, "reason": REASON},
        headers={"If-Match": '"1"'},
    )
    if response.status_code == 200:
        return
    suite.refused_flags[key] = _refusal("PATCH flag configuration", response)
    archived = suite.client.patch(
        f"{flags_url}/{key}",
        json={"archived": True, "reason": REASON},
        headers={"If-Match": '"1"'},
    )
    assert archived.status_code == 200, archived.text


def load_suite(client: Client, snapshot: dict[str, Any], project: str = PROJECT) -> LoadedSuite:
    """Create the suite's project, environment, segments and flags on the server."""
    suite = LoadedSuite(client, project)
    response = client.post("/api/v1/projects", json={"key": project})
    assert response.status_code == 201, response.text
    response = client.post(f"/api/v1/projects/{project}/environments", json={"key": ENVIRONMENT})
    assert response.status_code == 201, response.text
    segments: dict[str, Any] = snapshot.get("segments", {})
    for key in dependency_order(segments, lambda s: _segment_refs(s.get("rules", []))):
        _create_segment(suite, key, segments[key])
    flags: dict[str, Any] = snapshot.get("flags", {})
    for key in dependency_order(flags, _prerequisites):
        _create_flag(suite, key, flags[key])
    return suite
