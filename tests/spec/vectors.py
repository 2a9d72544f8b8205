"""Loading the shared evaluation vectors in spec/vectors (format: spec/README.md)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lockgate.engine import FlagKind

VECTORS = Path(__file__).resolve().parents[2] / "spec" / "vectors"

TYPES: dict[str, FlagKind | None] = {
    "any": None,
    "boolean": FlagKind.BOOLEAN,
    "string": FlagKind.STRING,
    "number": FlagKind.NUMBER,
    "json": FlagKind.JSON,
    "mode": FlagKind.MODE,
}


@dataclass(frozen=True)
class Case:
    suite: str
    id: str
    snapshot: dict[str, Any]
    flag: str
    context: dict[str, Any]
    default: Any
    type: str
    expect: dict[str, Any]

    @property
    def name(self) -> str:
        return f"{self.suite}/{self.id}"


@dataclass(frozen=True)
class ValidationSuite:
    suite: str
    snapshot: dict[str, Any]
    problems: tuple[str, ...]


def _suites() -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(VECTORS.glob("*.json"))]


def cases() -> list[Case]:
    out = []
    for suite in _suites():
        for raw in suite.get("cases", []):
            out.append(
                Case(
                    suite=suite["suite"],
                    id=raw["id"],
                    snapshot=suite["snapshot"],
                    flag=raw["flag"],
                    context=raw.get("context", {}),
                    default=raw.get("default"),
                    type=raw.get("type", "any"),
                    expect=raw["expect"],
                )
            )
    return out


def validation_suites() -> list[ValidationSuite]:
    return [
        ValidationSuite(s["suite"], s["snapshot"], tuple(p["path"] for p in s["problems"]))
        for s in _suites()
        if "problems" in s
    ]


def compare(case: Case, result: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Fields where ``result`` differs from the case's expectation: name → (want, got)."""
    return {
        name: (want, result.get(name))
        for name, want in case.expect.items()
        if result.get(name) != want or type(result.get(name)) is not type(want)
    }
