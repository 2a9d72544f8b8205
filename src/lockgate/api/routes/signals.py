"""Guardrail signals in: metric summaries and raw events from services (server keys).

``POST /sdk/v1/metrics`` (docs/guardrails.md, "Signals"): pre-aggregated summary rows, as
the SDK sends them, and raw events, aggregated into minute rows on arrival. Either way the
request becomes one upsert-add of at most :data:`MAX_ROWS` rows; the server's cost grows
with summaries, not with end-user events.
"""

from __future__ import annotations

import functools
import math
from datetime import datetime, timedelta
from typing import Annotated, Any

from anyio import to_thread
from fastapi import APIRouter, Request
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from lockgate.api.routes.sdk import RANGE
from lockgate.api.routes.sdk import _timestamp as canonical_timestamp
from lockgate.control.identity.sdk_keys import SdkKeyPrincipal
from lockgate.delivery.auth import ServerKey
from lockgate.delivery.hub import DeliveryHub
from lockgate.engine import CompiledSnapshot
from lockgate.errors import FieldProblem, InvalidInput
from lockgate.signals.summaries import (
    EXPOSURE,
    MAX_COUNT,
    MAX_MAGNITUDE,
    MINUTE,
    Aggregate,
    bucket_of,
)
from lockgate.store.signals import add_summaries, adding

router = APIRouter(prefix="/sdk/v1", tags=["sdk"])

MAX_ROWS = 2_000
"""Summary rows, and raw events, in one request (each)."""
MAX_AGE = timedelta(days=7)
"""How far in the past a summary or event may lie."""
MAX_AHEAD = timedelta(minutes=5)
"""How far in the future (clock skew) a summary or event may lie."""
KEY = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"
METRIC = r"^(\$exposure|[A-Za-z0-9][A-Za-z0-9_.:-]{0,127})$"


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


@functools.lru_cache(maxsize=1024)
def _cached_timestamp(value: str) -> str:
    return canonical_timestamp(value)  # most rows of a batch share their minute


Timestamp = Annotated[
    str,
    Field(
        min_length=10,
        max_length=40,
        description=f"ISO 8601 with a time zone, {RANGE} once converted to UTC",
    ),
    AfterValidator(_cached_timestamp),
]

Finite = Annotated[float, Field(ge=-MAX_MAGNITUDE, le=MAX_MAGNITUDE), AfterValidator(_finite)]


class SummaryRow(BaseModel):
    """One behavior x variation x metric x cohort x minute."""

    model_config = ConfigDict(extra="forbid", strict=True)
    behavior: str = Field(pattern=KEY, max_length=128)
    variation: str = Field(pattern=KEY, max_length=128)
    metric: str = Field(pattern=METRIC, max_length=128, description="`$exposure`: exposures only")
    cohort: str = Field(default="", max_length=200, description='`""`: the whole population')
    start: Timestamp = Field(description="The minute's start (later seconds are truncated)")
    count: int = Field(default=0, ge=0, le=MAX_COUNT)
    sum: float = Field(default=0.0, ge=-MAX_MAGNITUDE * MAX_COUNT, le=MAX_MAGNITUDE * MAX_COUNT)
    sum_sq: float = Field(default=0.0, ge=0.0, le=1e308)
    exposures: int = Field(default=0, ge=0, le=MAX_COUNT)

    @model_validator(mode="after")
    def _consistent(self) -> SummaryRow:
        if not (math.isfinite(self.sum) and math.isfinite(self.sum_sq)):
            raise ValueError("sum and sum_sq must be finite numbers")
        if self.metric == EXPOSURE and (self.count or self.sum or self.sum_sq):
            raise ValueError("a $exposure row carries exposures only (count, sum, sum_sq 0)")
        if self.count == 0 and (self.sum or self.sum_sq):
            raise ValueError("a row with count 0 has sum and sum_sq 0")
        return self


class RawEvent(BaseModel):
    """One observed value, attributed to a behavior's variation."""

    model_config = ConfigDict(extra="forbid", strict=True)
    metric: str = Field(pattern=METRIC, max_length=128)
    value: Finite = 1.0
    timestamp: Timestamp
    behavior: str | None = Field(
        default=None,
        pattern=KEY,
        max_length=128,
        description="Default: every behavior the snapshot binds the metric to",
    )
    variation: str | None = Field(
        default=None,
        pattern=KEY,
        max_length=128,
        description="Default: what the behavior serves the context with key `context_key`",
    )
    context_key: str | None = Field(default=None, min_length=1, max_length=256)
    cohort: str = Field(default="", max_length=200)


class MetricsBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    sdk: dict[str, Annotated[str, Field(max_length=100)]] = Field(
        default_factory=dict, max_length=10
    )
    summaries: list[SummaryRow] = Field(default_factory=list, max_length=MAX_ROWS)
    events: list[RawEvent] = Field(default_factory=list, max_length=MAX_ROWS)


@router.post(
    "/metrics",
    status_code=202,
    summary="Report metric summaries and raw metric events for guardrails (server keys)",
    responses={202: {"description": "Added into the stored summaries"}},
)
async def metrics(request: Request, body: MetricsBody, principal: ServerKey) -> dict[str, Any]:
    services = request.app.state.services
    compiled = None
    if any(e.behavior is None or e.variation is None for e in body.events):
        hub: DeliveryHub = request.app.state.hub
        compiled = (await hub.state(principal.environment_id)).compiled_snapshot()
    aggregate = _aggregate(body, services.clock(), compiled)
    rows = await to_thread.run_sync(_store, services, principal, aggregate)
    return {"summaries": len(body.summaries), "events": len(body.events), "rows": rows}


def _aggregate(body: MetricsBody, now: datetime, compiled: CompiledSnapshot | None) -> Aggregate:
    earliest, latest = (now - MAX_AGE).timestamp(), (now + MAX_AHEAD).timestamp()
    problems: list[FieldProblem] = []
    aggregate = Aggregate()
    for index, row in enumerate(body.summaries):
        moment = _in_range(row.start, earliest, latest, f"summaries[{index}].start", problems)
        if moment is None:
            continue
        key = (row.behavior, row.variation, row.metric, row.cohort, MINUTE, bucket_of(moment, 60))
        aggregate.add(key, row.count, row.sum, row.sum_sq, row.exposures)
    for index, event in enumerate(body.events):
        where = f"events[{index}]"
        moment = _in_range(event.timestamp, earliest, latest, f"{where}.timestamp", problems)
        if moment is None:
            continue
        for behavior, variation in _attribution(event, compiled, where, problems):
            aggregate.add_value(
                behavior, variation, event.metric, event.cohort, moment, event.value
            )
    if problems:
        raise InvalidInput(problems[0].message, problems)
    return aggregate


def _in_range(
    text: str, earliest: float, latest: float, field: str, problems: list[FieldProblem]
) -> float | None:
    moment = datetime.fromisoformat(text).timestamp()
    if moment < earliest:
        problems.append(FieldProblem(field, "is more than 7 days in the past"))
        return None
    if moment > latest:
        problems.append(FieldProblem(field, "is more than 5 minutes in the future"))
        return None
    return moment


def _attribution(
    event: RawEvent, compiled: CompiledSnapshot | None, where: str, problems: list[FieldProblem]
) -> list[tuple[str, str]]:
    """The (behavior, variation) pairs an event counts for."""
    if event.behavior is not None and event.variation is not None:
        return [(event.behavior, event.variation)]
    assert compiled is not None
    if event.behavior is not None:
        behaviors: tuple[str, ...] = (event.behavior,)
    else:
        binding = compiled.snapshot.metrics.get(event.metric)
        if binding is None or not binding.behaviors:
            problems.append(
                FieldProblem(
                    f"{where}.behavior",
                    "is required: no behavior's guardrail uses this metric in this environment",
                )
            )
            return []
        behaviors = binding.behaviors
    if event.variation is not None:
        return [(b, event.variation) for b in behaviors]
    if event.context_key is None:
        problems.append(
            FieldProblem(f"{where}.variation", "is required unless context_key is given")
        )
        return []
    context = {"key": event.context_key}
    out = []
    for behavior in behaviors:
        variation = compiled.evaluate(behavior, context).variation
        if variation is None:
            if event.behavior is not None:
                problems.append(
                    FieldProblem(f"{where}.behavior", "serves no variation to that context here")
                )
            continue
        out.append((behavior, variation))
    return out


def _store(services: Any, principal: SdkKeyPrincipal, aggregate: Aggregate) -> int:
    with adding(services.database) as conn:
        return add_summaries(conn, principal.environment_id, aggregate)
