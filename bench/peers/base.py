"""The interface every SDK adapter implements.

An adapter's `build(flag, workdir)` configures its SDK fully offline from a document it
derives from the SDK-neutral `FlagSpec` (in memory, or a file it writes under `workdir`)
and returns an `Evaluator`:

* `prepare_context(ctx)` turns a plain context dict into the SDK's native context type;
  it runs before timing, so context construction is not measured;
* `evaluate(native)` is the timed call: one public evaluation call of the SDK, returning
  the served variation value (a string).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workload import Context, FlagSpec

Detail = tuple[str, str | None, str, str | None]
"""(value, variation key, reason, rule id) — what lockgate and the floor report."""


def _nothing() -> None:
    return None


class Unavailable(Exception):  # noqa: N818 - reads as "SDK unavailable: <reason>"
    """Raised by `build` when an SDK cannot evaluate the flag offline; the message says why."""


@dataclass(frozen=True)
class Evaluator:
    prepare_context: Callable[[Context], Any]
    evaluate: Callable[[Any], str]
    close: Callable[[], None] = _nothing
    # For evaluators that report variation and reason too (lockgate, the floor): used to
    # check that they agree exactly, not only on the value.
    detail: Callable[[Any], Detail] | None = None


@dataclass(frozen=True)
class Adapter:
    name: str
    distribution: str | None  # PyPI distribution whose version is reported
    setup: str  # one line: how the SDK is configured offline and which call is timed
    build: Callable[[FlagSpec, Path], Evaluator]
