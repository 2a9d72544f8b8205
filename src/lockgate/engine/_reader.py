"""A typed reader over untrusted JSON that records problems with their paths."""

from __future__ import annotations

from collections.abc import Mapping, Set
from typing import Any

from lockgate.engine.problems import Problem

_MISSING: Any = object()


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


class Reader:
    """Reads fields of one JSON object at ``path``; wrong shapes become problems."""

    def __init__(self, data: Mapping[str, Any], path: str, problems: list[Problem]) -> None:
        self.data = data
        self.path = path
        self.problems = problems

    @classmethod
    def of(cls, value: object, path: str, problems: list[Problem]) -> Reader | None:
        if not isinstance(value, Mapping):
            problems.append(Problem(path, f"expected an object, got {_type_name(value)}"))
            return None
        return cls(value, path, problems)

    def at(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def problem(self, name: str, message: str) -> None:
        self.problems.append(Problem(self.at(name), message))

    def only(self, allowed: Set[str]) -> None:
        for name in self.data:
            if name not in allowed:
                self.problem(str(name), "unknown field")

    def _get(self, name: str, default: Any) -> Any:
        value = self.data.get(name, _MISSING)
        if value is _MISSING:
            if default is _MISSING:
                self.problem(name, "required field is missing")
            return default
        return value

    def str_(self, name: str, default: Any = _MISSING) -> Any:
        value = self._get(name, default)
        if value is not default and not isinstance(value, str):
            self.problem(name, f"expected a string, got {_type_name(value)}")
            return default if default is not _MISSING else ""
        return value

    def opt_str(self, name: str) -> str | None:
        value = self.data.get(name)
        if value is None:
            return None
        if not isinstance(value, str):
            self.problem(name, f"expected a string or null, got {_type_name(value)}")
            return None
        return value

    def int_(self, name: str, default: Any = _MISSING) -> Any:
        value = self._get(name, default)
        if value is default:
            return 0 if value is _MISSING else value
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            self.problem(name, f"expected a non-negative integer, got {_type_name(value)}")
            return 0
        return value

    def bool_(self, name: str, default: bool) -> bool:
        value = self.data.get(name, default)
        if not isinstance(value, bool):
            self.problem(name, f"expected a boolean, got {_type_name(value)}")
            return default
        return value

    def list_(self, name: str, *, required: bool = False) -> list[Any]:
        value = self._get(name, _MISSING if required else [])
        if value is _MISSING:
            return []
        if not isinstance(value, list | tuple):
            self.problem(name, f"expected an array, got {_type_name(value)}")
            return []
        return list(value)

    def str_list(self, name: str) -> tuple[str, ...]:
        items = self.list_(name)
        out: list[str] = []
        for index, item in enumerate(items):
            if isinstance(item, str):
                out.append(item)
            else:
                self.problems.append(
                    Problem(
                        f"{self.at(name)}[{index}]", f"expected a string, got {_type_name(item)}"
                    )
                )
        return tuple(out)
