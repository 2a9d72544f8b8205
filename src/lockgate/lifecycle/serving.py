"""What one environment's configuration serves: nothing new, some contexts, or everyone.

A configuration *serves everyone one variation* when every context gets the same variation
from it whatever its attributes: on, not killed, no individual targets, no exclusions, no
prerequisites, every rule serving that same variation, and a default that is that variation
(or a split giving it the whole bucket space). That is a *full release* when the variation
is not the off (fallback) variation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

__all__ = ["full_release_since", "released_variation", "serves_anyone", "serves_everyone"]

_WHOLE = 100_000
"""A split's weights add up to this (see docs/snapshot-format.md)."""


def _single(serve: Any) -> str | None:
    """The one variation a serve (``{"variation": …}`` or ``{"split": …}``) gives everyone."""
    if not isinstance(serve, Mapping):
        return None
    if isinstance(serve.get("variation"), str):
        return str(serve["variation"])
    split = serve.get("split")
    if isinstance(split, Sequence):
        full = [s for s in split if isinstance(s, Mapping) and s.get("weight") == _WHOLE]
        if len(full) == 1 and isinstance(full[0].get("variation"), str):
            return str(full[0]["variation"])
    return None


def serves_everyone(config: Mapping[str, Any] | None) -> str | None:
    """The variation every context is served, or ``None`` when contexts can differ."""
    if not config:
        return None
    if config.get("killed") or config.get("incidents"):
        off = config.get("off_variation")
        return str(off) if isinstance(off, str) else None
    if any(config.get(k) for k in ("targets", "exclusions")):
        return None
    if config.get("prerequisites"):
        return None
    if not config.get("on"):
        off = config.get("off_variation")
        return str(off) if isinstance(off, str) else None
    served = _single(config.get("default"))
    if served is None:
        return None
    for rule in config.get("rules") or ():
        serve = rule.get("serve", rule) if isinstance(rule, Mapping) else None
        if _single(serve) != served:
            return None
    return served


def released_variation(config: Mapping[str, Any] | None) -> str | None:
    """The variation of a full release (everyone, not the off variation), else ``None``."""
    served = serves_everyone(config)
    if served is None or not config or not config.get("on") or config.get("killed"):
        return None
    return None if served == config.get("off_variation") else served


def serves_anyone(config: Mapping[str, Any] | None) -> bool:
    """Whether the configuration serves anything but its off variation to some context."""
    if not config or not config.get("on") or config.get("killed") or config.get("incidents"):
        return False
    return serves_everyone(config) != config.get("off_variation")


class _Version(Protocol):
    @property
    def at(self) -> datetime: ...

    @property
    def config(self) -> Mapping[str, Any]: ...


def full_release_since(history: Sequence[_Version]) -> datetime | None:
    """When the current full release began: the first of the latest run of versions that
    all serve the same variation to everyone (``None`` when the latest is no full release).

    ``history`` is in version order, oldest first.
    """
    if not history:
        return None
    current = released_variation(history[-1].config)
    if current is None:
        return None
    since = history[-1].at
    for version in reversed(history[:-1]):
        if released_variation(version.config) != current:
            break
        since = version.at
    return since
