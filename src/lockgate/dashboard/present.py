"""How the dashboard words a behavior's state: pure functions of configurations.

No I/O: each takes what a use-case returned and answers what a page shows (a label, a tone
for its colour and a detail line), so the words are the same on every page and testable
without a browser.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "Badge",
    "WHOLE",
    "environment_badge",
    "exposure",
    "guardrail_health",
    "percent_of",
    "split_for",
]

WHOLE = 100_000
"""The sum of a split's weights (docs/snapshot-format.md): 1 = 0.001 %."""


@dataclass(frozen=True)
class Badge:
    label: str
    tone: str
    """ok | warn | danger | muted | info: a CSS class, never the only carrier of meaning."""
    detail: str = ""


def _percent(weight: int) -> str:
    return f"{weight * 100 / WHOLE:g}%"


def _serve(serve: dict[str, Any]) -> str:
    split = serve.get("split")
    if isinstance(split, list):
        parts = [f"{s.get('variation')} {_percent(int(s.get('weight', 0)))}" for s in split]
        return " · ".join(parts)
    return f"{serve.get('variation')}"


def _extras(config: dict[str, Any]) -> str:
    counts = (
        (len(config.get("rules") or []), "rule"),
        (sum(len(t.get("values") or []) for t in config.get("targets") or []), "target"),
        (len(config.get("exclusions") or []), "rollback"),
    )
    return ", ".join(f"{n} {word}{'s' if n != 1 else ''}" for n, word in counts if n)


def exposure(config: dict[str, Any] | None) -> Badge:
    """What a configuration serves, in a few words."""
    if not config:
        return Badge("not configured", "muted")
    fallback = config.get("off_variation")
    if config.get("killed"):
        return Badge("killed", "danger", f"everyone gets {fallback}")
    if config.get("incidents"):
        return Badge("incident", "danger", f"everyone gets {fallback}")
    if not config.get("on"):
        return Badge("off", "muted", f"serves {fallback}")
    default = config.get("default") or {}
    label = _serve(default)
    tone = "warn" if "split" in default else "ok"
    return Badge(label, tone, _extras(config))


def percent_of(config: dict[str, Any] | None, variation: str) -> float:
    """The share of the default serve that goes to ``variation`` (0 to 100)."""
    default = (config or {}).get("default") or {}
    split = default.get("split")
    if isinstance(split, list):
        weight = sum(int(s.get("weight", 0)) for s in split if s.get("variation") == variation)
        return weight * 100 / WHOLE
    return 100.0 if default.get("variation") == variation else 0.0


def split_for(variation: str, percent: float, rest: str) -> dict[str, Any]:
    """The default serve giving ``percent`` to ``variation`` and the remainder to ``rest``."""
    weight = round(percent * WHOLE / 100)
    if weight >= WHOLE or variation == rest:
        return {"variation": variation}
    if weight <= 0:
        return {"variation": rest}
    return {
        "split": [
            {"variation": variation, "weight": weight},
            {"variation": rest, "weight": WHOLE - weight},
        ]
    }


def guardrail_health(states: dict[str, int] | None) -> Badge:
    """One word for a behavior's guardrails in one environment."""
    if not states:
        return Badge("none", "muted")
    breached = states.get("breached", 0)
    if breached:
        return Badge(f"{breached} breached", "danger")
    healthy = states.get("healthy", 0)
    waiting = sum(states.values()) - healthy
    if waiting:
        return Badge(f"{healthy} healthy, {waiting} waiting for data", "warn")
    return Badge(f"{healthy} healthy", "ok")


def environment_badge(protected: bool, development: bool) -> Badge:
    if protected:
        return Badge("protected", "danger")
    if development:
        return Badge("development", "info")
    return Badge("unprotected", "warn")
