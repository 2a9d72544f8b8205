"""JSON request bodies, read strictly: what two parsers could read differently is refused.

Python's ``json`` accepts things other implementations (and lockgate's own databases)
disagree on. A request body is refused, naming the field, when it has:

* the same key twice in one object (``json`` keeps the last, others the first);
* ``NaN``, ``Infinity`` or a number too large for a double (``1e400``);
* an integer beyond ±(2**53 - 1), which a JavaScript or Go client reads rounded;
* a NUL character (U+0000) in any string or key: PostgreSQL cannot store one and SQLite
  can, so the one rule for both is to refuse it everywhere.

docs/api.md lists these rules. Pure; used by the API's request middleware and by OFREP.
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["MAX_SAFE_INTEGER", "StrictJsonError", "loads"]

MAX_SAFE_INTEGER = 2**53 - 1


class StrictJsonError(ValueError):
    """A body that is not strict JSON; ``field`` is a path such as ``rules[0].id``."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class _Bad:
    """Stands where a refused number was, so that its path can be found after parsing."""

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message


def loads(text: str | bytes) -> Any:
    """Parse ``text``; raises :class:`StrictJsonError` (strictness) or ``ValueError`` (syntax)."""
    duplicates: dict[int, str] = {}

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        obj: dict[str, Any] = {}
        for key, value in items:
            if key in obj and id(obj) not in duplicates:
                duplicates[id(obj)] = key
            obj[key] = value
        return obj

    value = json.loads(
        text,
        object_pairs_hook=pairs,
        parse_constant=lambda name: _Bad(f"{name} is not a JSON number"),
        parse_float=_float,
        parse_int=_int,
    )
    problem = _find(value, "", duplicates)
    if problem is not None:
        raise problem
    return value


def _float(text: str) -> Any:
    number = float(text)
    return number if math.isfinite(number) else _Bad("number is too large")


def _int(text: str) -> Any:
    if len(text) > 17 or abs(int(text)) > MAX_SAFE_INTEGER:
        return _Bad(f"integer is outside ±{MAX_SAFE_INTEGER}")
    return int(text)


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _find(value: Any, path: str, duplicates: dict[int, str]) -> StrictJsonError | None:
    """The first problem in ``value`` (depth first, in document order), or ``None``."""
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, _Bad):
            return StrictJsonError(where or "body", item.message)
        if isinstance(item, str):
            if "\x00" in item:
                return StrictJsonError(where or "body", "contains a NUL character")
        elif isinstance(item, dict):
            if id(item) in duplicates:
                return StrictJsonError(_join(where, duplicates[id(item)]), "duplicate key")
            for key in item:
                if "\x00" in key:
                    return StrictJsonError(where or "body", "a key contains a NUL character")
            stack.extend((v, _join(where, k)) for k, v in reversed(item.items()))
        elif isinstance(item, list):
            stack.extend((v, _join(where, i)) for i, v in reversed(list(enumerate(item))))
    return None
