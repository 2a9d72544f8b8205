"""Rendering for the HTTP commands: aligned tables for people, raw API JSON for scripts."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

__all__ = ["Column", "cell", "counted", "print_fields", "print_json", "print_table", "warn"]

Column = tuple[str, Callable[[dict[str, Any]], Any]]
"""A table column: its header and how to read its cell from one item."""


def counted(number: int, singular: str, plural: str | None = None) -> str:
    """``1 flag``, ``2 flags``, ``0 entries``: a number and its noun, agreeing."""
    noun = singular if number == 1 else plural or f"{singular}s"
    return f"{number} {noun}"


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


def cell(value: Any) -> str:
    """One value as table text: ``-`` for nothing, lists comma-joined, JSON otherwise."""
    if value is None or value in ("", [], {}):
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        return ",".join(str(v) for v in value)
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return " ".join(str(value).split())


def print_table(items: Iterable[dict[str, Any]], columns: Sequence[Column]) -> None:
    """An aligned table with a header row; ``(none)`` when there are no items."""
    rows = [[cell(read(item)) for _, read in columns] for item in items]
    if not rows:
        print("(none)")
        return
    headers = [header for header, _ in columns]
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    for row in [headers, *rows]:
        print(
            "  ".join(text.ljust(width) for text, width in zip(row, widths, strict=True)).rstrip()
        )


def print_fields(pairs: Sequence[tuple[str, Any]]) -> None:
    """``label:  value`` lines, labels aligned."""
    width = max(len(label) for label, _ in pairs) + 1
    for label, value in pairs:
        print(f"{label + ':':<{width}}  {cell(value)}")


def warn(message: str) -> None:
    print(f"lockgate: warning: {message}", file=sys.stderr)
