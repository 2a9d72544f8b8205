"""Validation problems: where in a document something is wrong, and what."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Problem", "SnapshotError"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a snapshot, at ``path`` (``flags.f1.rules[0].clauses[1].op``)."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class SnapshotError(ValueError):
    """A snapshot that cannot be served; ``problems`` says why."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        shown = "; ".join(str(p) for p in problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        super().__init__(f"invalid snapshot: {shown}{more}")
