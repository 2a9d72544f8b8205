"""Redaction of context attributes: drop, hash (HMAC-SHA256 with a salt) or keep.

A :class:`RedactionPolicy` is what one environment (plus one SDK's own settings) says
about context attributes:

- a **private** attribute's value never leaves the application: it is dropped (only its
  name is listed, in ``redacted``) unless its rule says ``hash``;
- a **rule** says what to do with one attribute, private or not: ``drop``, ``hash`` or
  ``keep``; a private attribute cannot be kept (the settings are refused);
- every other attribute is kept.

Hashing is ``HMAC-SHA256(salt, value)`` in hex, prefixed ``hmac:``: the same value gives
the same hash within one environment (so records of one subject can still be grouped),
and nobody without the salt can test guesses against it. Values are hashed in their
canonical JSON form, so ``42`` and ``"42"`` differ.

:func:`redact` is pure and total: any JSON-like context gives a result, never an error.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = [
    "MAX_ATTRIBUTES",
    "RedactionPolicy",
    "Rule",
    "loosened",
    "parse_settings",
    "redact",
]

MAX_ATTRIBUTES = 100
"""The most attribute names a privacy setting may list (private ones, and rules)."""
MAX_NAME_CHARS = 128
HASH_PREFIX = "hmac:"


class Rule(StrEnum):
    """What happens to one attribute's value, from the strictest to the loosest."""

    DROP = "drop"
    HASH = "hash"
    KEEP = "keep"

    @property
    def strictness(self) -> int:
        """2 for ``drop``, 1 for ``hash``, 0 for ``keep``."""
        return _STRICTNESS[self]


_STRICTNESS = {Rule.DROP: 2, Rule.HASH: 1, Rule.KEEP: 0}


@dataclass(frozen=True, slots=True)
class RedactionPolicy:
    """The attributes whose values never leave as they are, and the per-attribute rules."""

    private: frozenset[str] = frozenset()
    rules: Mapping[str, Rule] = field(default_factory=dict)
    salt: str = ""

    def rule_for(self, name: str) -> Rule:
        """The rule that applies to attribute ``name`` (a private one is never kept)."""
        rule = self.rules.get(name)
        if name in self.private:
            return rule if rule is Rule.HASH else Rule.DROP
        return Rule.KEEP if rule is None else rule

    def with_private(self, names: Iterable[str]) -> RedactionPolicy:
        """This policy with more private attributes (an SDK's own, or one call's)."""
        more = frozenset(names)
        if more <= self.private:
            return self
        return RedactionPolicy(self.private | more, self.rules, self.salt)

    def hash(self, value: Any) -> str:
        """``hmac:`` and the hex HMAC-SHA256 of ``value``'s canonical JSON under the salt."""
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        digest = hmac.new(self.salt.encode(), text.encode(), hashlib.sha256).hexdigest()
        return HASH_PREFIX + digest

    def document(self) -> dict[str, Any]:
        """The settings' JSON form (without the salt)."""
        return {
            "private_attributes": sorted(self.private),
            "rules": {name: self.rules[name].value for name in sorted(self.rules)},
        }


def redact(context: Mapping[str, Any], policy: RedactionPolicy) -> tuple[dict[str, Any], list[str]]:
    """``context`` as it may be recorded, and the sorted names of the attributes dropped.

    Hashed attributes keep their name with the hash as value; dropped ones are left out
    and named in the list. Attribute names are never secret.
    """
    kept: dict[str, Any] = {}
    dropped: list[str] = []
    for name, value in context.items():
        rule = policy.rule_for(name)
        if rule is Rule.KEEP:
            kept[name] = value
        elif rule is Rule.HASH:
            kept[name] = value if _is_hash(value) else policy.hash(value)
        else:
            dropped.append(name)
    dropped.sort()
    return kept, dropped


def _is_hash(value: Any) -> bool:
    # A value redacted once (by the SDK) is not hashed again (by the server).
    return isinstance(value, str) and value.startswith(HASH_PREFIX) and len(value) == 69


def parse_settings(
    data: Any, salt: str = ""
) -> tuple[RedactionPolicy | None, list[tuple[str, str]]]:
    """A policy from the settings' JSON form, or ``None`` and ``(field, problem)`` pairs.

    ``{"private_attributes": [name, ...], "rules": {name: "drop" | "hash" | "keep"}}``;
    both are optional.
    """
    problems: list[tuple[str, str]] = []
    if not isinstance(data, Mapping):
        return None, [("", "must be an object")]
    for name in data:
        if name not in ("private_attributes", "rules"):
            problems.append((str(name), "unknown field; expected private_attributes or rules"))
    private = _names(data.get("private_attributes", []), problems)
    rules = _rules(data.get("rules", {}), problems)
    for name in sorted(private):
        if rules.get(name) is Rule.KEEP:
            problems.append((f"rules.{name}", "a private attribute cannot be kept"))
    if problems:
        return None, problems
    return RedactionPolicy(frozenset(private), rules, salt), []


def _names(raw: Any, problems: list[tuple[str, str]]) -> set[str]:
    if not isinstance(raw, list):
        problems.append(("private_attributes", "must be a list of attribute names"))
        return set()
    if len(raw) > MAX_ATTRIBUTES:
        problems.append(("private_attributes", f"at most {MAX_ATTRIBUTES} names"))
        return set()
    names: set[str] = set()
    for index, name in enumerate(raw):
        problem = _name_problem(name)
        if problem:
            problems.append((f"private_attributes.{index}", problem))
        else:
            names.add(name)
    return names


def _rules(raw: Any, problems: list[tuple[str, str]]) -> dict[str, Rule]:
    if not isinstance(raw, Mapping):
        problems.append(("rules", "must be an object: attribute name → drop, hash or keep"))
        return {}
    if len(raw) > MAX_ATTRIBUTES:
        problems.append(("rules", f"at most {MAX_ATTRIBUTES} attributes"))
        return {}
    rules: dict[str, Rule] = {}
    for name, value in raw.items():
        problem = _name_problem(name)
        if problem:
            problems.append((f"rules.{name}", problem))
        elif value not in ("drop", "hash", "keep"):
            problems.append((f"rules.{name}", "must be drop, hash or keep"))
        else:
            rules[name] = Rule(value)
    return rules


def _name_problem(name: Any) -> str | None:
    if not isinstance(name, str) or not name:
        return "must be a non-empty attribute name"
    if len(name) > MAX_NAME_CHARS:
        return f"at most {MAX_NAME_CHARS} characters"
    return None


def loosened(before: RedactionPolicy, after: RedactionPolicy) -> list[str]:
    """The attributes whose values ``after`` records more openly than ``before`` (sorted)."""
    names = before.private | after.private | set(before.rules) | set(after.rules)
    return sorted(
        name for name in names if after.rule_for(name).strictness < before.rule_for(name).strictness
    )
