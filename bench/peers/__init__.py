"""One adapter per SDK, all with the same small interface (see `base`)."""

from __future__ import annotations

from peers.base import Adapter, Evaluator, Unavailable

__all__ = ["Adapter", "Evaluator", "Unavailable", "all_adapters"]


def all_adapters() -> list[Adapter]:
    """Every SDK in the comparison, the floor first and lockgate second."""
    from peers import featbit, flagd, flagsmith, floor, growthbook, launchdarkly, lockgate, unleash

    return [
        floor.ADAPTER,
        lockgate.ADAPTER,
        featbit.ADAPTER,
        launchdarkly.ADAPTER,
        growthbook.ADAPTER,
        flagsmith.ADAPTER,
        unleash.ADAPTER,
        flagd.ADAPTER,
    ]
