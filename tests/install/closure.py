"""Which installed distributions an extra of lockgate needs, read from package metadata.

Starting at ``lockgate[extras]``, follow every ``Requires-Dist`` whose marker holds here,
through the distributions installed in this environment. The result is what a fresh
install of that extra would bring (at the versions pinned here): the pinned locks are
checked against it, and the install-matrix venvs are built from exactly it.
"""

from __future__ import annotations

from importlib.metadata import Distribution, PackageNotFoundError, distribution

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

__all__ = ["closure", "pins"]


def closure(extras: tuple[str, ...]) -> dict[str, Distribution]:
    """Every distribution (not lockgate itself) that ``lockgate[extras]`` needs."""
    found: dict[str, Distribution] = {}
    pending: list[tuple[str, frozenset[str]]] = [("lockgate", frozenset(extras))]
    seen: set[tuple[str, frozenset[str]]] = set()
    while pending:
        name, wanted = pending.pop()
        key = canonicalize_name(name)
        if (key, wanted) in seen:
            continue
        seen.add((key, wanted))
        dist = _installed(name)
        if key != "lockgate":
            found[key] = dist
        for text in dist.requires or []:
            requirement = Requirement(text)
            if _applies(requirement, wanted):
                pending.append((requirement.name, frozenset(requirement.extras)))
    return found


def pins(extras: tuple[str, ...]) -> list[str]:
    """``name==version`` lines of :func:`closure`, sorted case-insensitively."""
    lines = [f"{d.metadata['Name']}=={d.version}" for d in closure(extras).values()]
    return sorted(lines, key=str.lower)


def _installed(name: str) -> Distribution:
    try:
        return distribution(name)
    except PackageNotFoundError:
        raise AssertionError(f"{name} is required but not installed here") from None


def _applies(requirement: Requirement, extras: frozenset[str]) -> bool:
    if requirement.marker is None:
        return True
    if not extras:
        return requirement.marker.evaluate({"extra": ""})
    return any(requirement.marker.evaluate({"extra": e}) for e in extras)
