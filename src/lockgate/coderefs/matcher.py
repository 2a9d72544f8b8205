"""One automaton for every key: quoted literals, aliases, SDK calls and YAML values.

Patterns (all in one Aho-Corasick automaton, so a file is read once whatever the number of
keys):

* a **literal**: the key between two of the same delimiter (``"checkout"``, ``'checkout'``,
  ``\\`checkout\\```; configurable). A longer key that contains it (``"checkout-v2"``) or
  another string (``"checkout page"``) does not match;
* an **alias**: a case variant of the key (``NEW_CHECKOUT``), matched as a whole word;
* an **SDK call**: ``variation(``, ``.mode(``, ``getBooleanValue(``… followed by a quoted
  key; a key no behavior has is reported as *unknown*;
* in YAML, an unquoted value or list item (``flag: checkout``, ``- checkout``).

A match inside a line comment (``#``, ``//``) or a block-comment line (``/* … */``, ``*``)
is not a reference.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import ahocorasick_rs

from lockgate.coderefs.aliases import aliases_of

__all__ = ["DEFAULT_DELIMITERS", "SDK_CALLS", "Hit", "Matcher", "MatcherOptions"]

DEFAULT_DELIMITERS = "\"'`"
SDK_CALLS = (
    "variation(",
    "Variation(",
    ".mode(",
    ".mode_detail(",
    "getBooleanValue(",
    "getStringValue(",
    "getNumberValue(",
    "getIntegerValue(",
    "getDoubleValue(",
    "getObjectValue(",
    "get_boolean_value(",
    "get_string_value(",
    "get_integer_value(",
    "get_float_value(",
    "get_object_value(",
)
"""Calls whose first argument is a behavior key: lockgate's SDK and OpenFeature's."""

LITERAL, ALIAS, CALL, YAML_VALUE = "literal", "alias", "sdk_call", "yaml_value"
_WORD = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:-")
_YAML_END = frozenset(b" \r\n#")
_KEY_AFTER_CALL = re.compile(rb"\s*([\"'`])([A-Za-z0-9][A-Za-z0-9._:-]{0,127})\1")
_LINE_COMMENTS = {"python": ("#",), "yaml": ("#",), "javascript": ("//",), "typescript": ("//",),
                  "go": ("//",), "java": ("//",), "json": ()}  # fmt: skip
_BLOCK_COMMENTS = frozenset({"javascript", "typescript", "go", "java"})


@dataclass(frozen=True, slots=True)
class MatcherOptions:
    delimiters: str = DEFAULT_DELIMITERS
    alias_styles: Sequence[str] = ()
    sdk_calls: Sequence[str] = SDK_CALLS
    extra_aliases: dict[str, Sequence[str]] = field(default_factory=dict)
    """More names for a key (``{"checkout": ["CHECKOUT_FLAG"]}``), matched as whole words."""


@dataclass(frozen=True, slots=True)
class Hit:
    key: str
    line: int
    column: int
    text: str
    how: str  # literal | alias | sdk_call | yaml_value
    known: bool = True


def _inside_quotes(line: str, end: int) -> bool:
    quote = ""
    escaped = False
    for ch in line[:end]:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'`":
            quote = ch
    return bool(quote)


def in_comment(line: str, column: int, language: str) -> bool:
    """Whether ``column`` of ``line`` is inside a comment of ``language``."""
    if language in _BLOCK_COMMENTS and line.lstrip().startswith(("/*", "*")):
        return True
    for marker in _LINE_COMMENTS.get(language, ()):
        at = line.find(marker)
        while -1 < at < column:
            if not _inside_quotes(line, at):
                return True
            at = line.find(marker, at + 1)
    return False


class Matcher:
    """Finds references to ``keys`` in one file's bytes (UTF-8)."""

    def __init__(self, keys: Iterable[str], options: MatcherOptions | None = None) -> None:
        self.options = options or MatcherOptions()
        self.keys = frozenset(keys)
        patterns: list[bytes] = []
        self._meta: list[tuple[str, str]] = []

        def add(pattern: str, how: str, what: str) -> None:
            patterns.append(pattern.encode())
            self._meta.append((how, what))

        for key in sorted(self.keys):
            for d in self.options.delimiters:
                add(d + key + d, LITERAL, key)
            for prefix in (": ", "- "):
                add(prefix + key, YAML_VALUE, key)
            names = [*aliases_of(key, self.options.alias_styles),
                     *self.options.extra_aliases.get(key, ())]  # fmt: skip
            for alias in names:
                if alias not in self.keys:
                    add(alias, ALIAS, key)
        for call in self.options.sdk_calls:
            add(call, CALL, call)
        self._automaton = ahocorasick_rs.BytesAhoCorasick(patterns) if patterns else None

    def find(self, data: bytes, language: str) -> list[Hit]:
        """The references in ``data``, a file of ``language``, in text order."""
        if self._automaton is None:
            return []
        found: dict[tuple[int, str], tuple[str, bool]] = {}
        for index, start, end in self._automaton.find_matches_as_indexes(data, overlapping=True):
            how, what = self._meta[index]
            hit = self._accept(data, start, end, how, what, language)
            if hit is not None:
                found.setdefault((hit[0], hit[1]), (hit[2], hit[3]))
        return self._lines(data, found, language) if found else []

    def _accept(
        self, data: bytes, start: int, end: int, how: str, what: str, language: str
    ) -> tuple[int, str, str, bool] | None:
        if how == LITERAL:
            return start, what, how, True
        if how == ALIAS:
            before = data[start - 1] if start > 0 else 32
            after = data[end] if end < len(data) else 32
            if before in _WORD or after in _WORD:
                return None
            return start, what, how, True
        if how == YAML_VALUE:
            if language != "yaml":
                return None
            after = data[end] if end < len(data) else 10
            return (start + 2, what, how, True) if after in _YAML_END else None
        match = _KEY_AFTER_CALL.match(data, end)
        if match is None:
            return None
        key = match.group(2).decode()
        return match.start(2) - 1, key, how, key in self.keys

    def _lines(
        self, data: bytes, found: dict[tuple[int, str], tuple[str, bool]], language: str
    ) -> list[Hit]:
        hits: list[Hit] = []
        line, counted_to = 1, 0
        seen: set[tuple[int, str]] = set()
        for (position, key), (how, known) in sorted(found.items()):
            line += data.count(b"\n", counted_to, position)
            counted_to = position
            if (line, key) in seen:
                continue
            begin = data.rfind(b"\n", 0, position) + 1
            stop = data.find(b"\n", position)
            row = data[begin : stop if stop != -1 else len(data)].decode("utf-8", "replace")
            column = len(data[begin:position].decode("utf-8", "replace"))
            if in_comment(row, column, language):
                continue
            seen.add((line, key))
            hits.append(Hit(key, line, column + 1, row.strip()[:300], how, known))
        return hits
