"""Guardrail and rollout-plan definitions: read from JSON, checked, every problem named.

A :class:`GuardrailSpec` says what to watch (a metric of one behavior in one environment,
aggregated one way), what counts as bad (an absolute threshold, or a regression against
the stable variation), how much data it needs (a minimum sample per arm), over which
window, and what to do when it is breached. A :class:`PlanSpec` is the staged rollout the
guardrails protect.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lockgate.errors import FieldProblem, InvalidInput

__all__ = [
    "ACTIONS",
    "AGGREGATIONS",
    "COMPARISONS",
    "DEFAULT_ALPHA",
    "DEFAULT_MIN_SAMPLE",
    "GuardrailSpec",
    "PlanSpec",
    "StageSpec",
    "parse_duration",
    "read_guardrail",
    "read_plan",
]

AGGREGATIONS = ("rate", "mean", "sum", "count")
"""``rate``: the metric's sum per exposure; ``mean``: per tracked value; ``sum`` and
``count``: totals over the window (caps, typically per cohort)."""
PERCENTILES = ("p50", "p90", "p95", "p99")
COMPARISONS = ("regression", "absolute")
SOURCES = ("summaries", "prometheus")
"""``summaries``: what SDKs and the ingestion endpoint send (judged with the confidence
sequence); ``prometheus``: an instant PromQL query against the configured server."""
MAX_QUERY = 4096
DIRECTIONS = ("higher_is_worse", "lower_is_worse")
ACTIONS = (
    "pause", "reduce", "fallback", "kill", "exclude", "require_approval", "notify", "deny_tool",
)  # fmt: skip
DEFAULT_ALPHA = 0.05
DEFAULT_MIN_SAMPLE = 1000
DEFAULT_WINDOW = 3600
MAX_WINDOW = 30 * 86400
MAX_STAGES = 20
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_ATTRIBUTE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:-]{0,127}$")
_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]{0,127}$")
_DURATION = re.compile(r"^([1-9][0-9]*)([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> int | None:
    """``15m`` → 900; ``None`` when it is not a duration."""
    found = _DURATION.match(text)
    return None if found is None else int(found.group(1)) * _UNITS[found.group(2)]


@dataclass(frozen=True, slots=True)
class GuardrailSpec:
    key: str
    flag: str
    environment: str
    metric: str
    aggregation: str = "rate"
    comparison: str = "regression"
    threshold: float = 0.0
    """``regression``: the relative margin tolerated (``0.1``: 10 % worse than stable is
    still healthy); ``absolute``: the value itself."""
    direction: str = "higher_is_worse"
    min_sample: int = DEFAULT_MIN_SAMPLE
    window: int = DEFAULT_WINDOW
    action: str = "pause"
    per: str | None = None
    """A cohort attribute (``account``): the cap applies to each value of it separately."""
    variation: str | None = None
    """The generated variation; ``None``: the current stage's (or every non-stable one)."""
    stable: str | None = None
    """The stable variation; ``None``: the behavior's fallback (``off_variation``)."""
    alpha: float = DEFAULT_ALPHA
    data_source: str = "summaries"
    query: str | None = None
    """``prometheus``: the PromQL instant query whose value is watched."""
    variation_label: str | None = None
    """``prometheus``: the label whose value names the variation of each series."""
    sample_query: str | None = None
    """``prometheus``: a query for the sample size (per variation with the label); with it,
    fewer than ``min_sample`` never triggers and never clears the guardrail."""
    tool: str | None = None
    """``deny_tool``: the registered tool a breach denies to everyone (docs/agents.md)."""

    @property
    def statistical(self) -> bool:
        """Compared with a confidence sequence (rates and means of lockgate's own
        summaries); caps and Prometheus values are compared as they are."""
        return self.data_source == "summaries" and self.aggregation in ("rate", "mean")

    @property
    def prometheus(self) -> bool:
        return self.data_source == "prometheus"

    def document(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "flag": self.flag,
            "environment": self.environment,
            "metric": self.metric,
            "aggregation": self.aggregation,
            "comparison": self.comparison,
            "threshold": self.threshold,
            "direction": self.direction,
            "min_sample": self.min_sample,
            "window": self.window,
            "action": self.action,
            "per": self.per,
            "variation": self.variation,
            "stable": self.stable,
            "alpha": self.alpha,
            **(
                {
                    "data_source": self.data_source,
                    "query": self.query,
                    "variation_label": self.variation_label,
                    "sample_query": self.sample_query,
                }
                if self.prometheus
                else {}
            ),
            **({"tool": self.tool} if self.tool is not None else {}),
        }


@dataclass(frozen=True, slots=True)
class StageSpec:
    percent: float
    """The share of the stage's audience that gets the generated variation (0-100)."""
    clauses: tuple[dict[str, Any], ...] = ()
    """The stage's audience (engine clauses); empty: everyone."""
    min_hold: int = 0
    """Seconds the stage is held before the next one, at least."""
    min_sample: int = 0
    """Exposures of the generated variation in this stage, at least, before the next."""
    approval: bool = False
    """A person advances into this stage (an approval gate); the system never does."""
    name: str = ""
    variation: str | None = None
    """The variation this stage rolls out, when it differs from the plan's (a contract's
    stages may raise the mode stage by stage)."""

    @property
    def weight(self) -> int:
        return round(self.percent * 1000)

    def document(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "percent": self.percent,
            "clauses": [dict(c) for c in self.clauses],
            "min_hold": self.min_hold,
            "min_sample": self.min_sample,
            "approval": self.approval,
            **({"variation": self.variation} if self.variation else {}),
        }


@dataclass(frozen=True, slots=True)
class PlanSpec:
    flag: str
    environment: str
    variation: str
    """The generated variation the plan rolls out."""
    stable: str | None = None
    """What everyone else gets; ``None``: the behavior's fallback."""
    stages: tuple[StageSpec, ...] = field(default_factory=tuple)
    srm_alpha: float = 0.001

    def generated(self, stage: int) -> str:
        """The variation under test at ``stage`` (the plan's before the first stage)."""
        if 0 <= stage < len(self.stages):
            return self.stages[stage].variation or self.variation
        return self.variation

    def document(self) -> dict[str, Any]:
        return {
            "flag": self.flag,
            "environment": self.environment,
            "variation": self.variation,
            "stable": self.stable,
            "stages": [s.document() for s in self.stages],
            "srm_alpha": self.srm_alpha,
        }


class _Reader:
    def __init__(self, data: Any, what: str) -> None:
        self.problems: list[FieldProblem] = []
        self.what = what
        if not isinstance(data, Mapping):
            self.problems.append(FieldProblem("body", "must be a JSON object"))
            data = {}
        self.data: Mapping[str, Any] = data

    def unknown(self, allowed: tuple[str, ...], path: str = "", data: Any = None) -> None:
        data = self.data if data is None else data
        for name in data:
            if name not in allowed:
                self.problems.append(FieldProblem(f"{path}{name}", "unknown field"))

    def fail(self, name: str, message: str) -> None:
        self.problems.append(FieldProblem(name, message))

    def text(self, name: str, pattern: re.Pattern[str], required: bool, default: Any = None) -> Any:
        value = self.data.get(name, default)
        if value is None:
            if required:
                self.fail(name, "required")
            return default
        if not isinstance(value, str) or not pattern.match(value):
            self.fail(name, "letters, digits, '.', '_' or '-' (at most 128)")
            return default
        return value

    def choice(self, name: str, options: tuple[str, ...], default: str) -> str:
        value = self.data.get(name, default)
        if value not in options:
            self.fail(name, f"one of {', '.join(options)}")
            return default
        return str(value)

    def number(
        self, name: str, default: float, low: float, high: float, data: Any = None, path: str = ""
    ) -> float:
        data = self.data if data is None else data
        value = data.get(name, default)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or not low <= value <= high
        ):
            self.fail(f"{path}{name}", f"a number from {low:g} to {high:g}")
            return default
        return float(value)

    def whole(
        self, name: str, default: int, low: int, high: int, data: Any = None, path: str = ""
    ) -> int:
        data = self.data if data is None else data
        value = data.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.fail(f"{path}{name}", f"a whole number from {low} to {high}")
            return default
        return value

    def duration(
        self, name: str, default: int, data: Any = None, path: str = "", low: int = 1
    ) -> int:
        data = self.data if data is None else data
        value = data.get(name, default)
        seconds: int | None
        if isinstance(value, str):
            seconds = parse_duration(value)
        elif isinstance(value, int) and not isinstance(value, bool):
            seconds = value
        else:
            seconds = None
        if seconds is None or not low <= seconds <= MAX_WINDOW:
            self.fail(f"{path}{name}", "a duration such as 15m, 1h, 1d (or seconds), at most 30d")
            return default
        return seconds

    def done(self) -> None:
        if self.problems:
            raise InvalidInput(f"the {self.what} is not valid", self.problems)


_GUARDRAIL_FIELDS = (
    "key", "flag", "environment", "metric", "aggregation", "comparison", "threshold",
    "direction", "min_sample", "window", "action", "per", "variation", "stable", "alpha",
    "data_source", "query", "variation_label", "sample_query", "tool",
)  # fmt: skip


def _metric(r: _Reader) -> str:
    value = r.data.get("metric")
    if not isinstance(value, str) or not 0 < len(value) <= 128:
        r.fail("metric", "required: the metric's name (at most 128 characters)")
        return ""
    if value.startswith("$"):
        r.fail("metric", "names starting with '$' are reserved")
        return ""
    return value


def _aggregation(r: _Reader, source: str) -> str:
    value = r.data.get("aggregation", "rate")
    if source == "prometheus" and value in PERCENTILES:
        return str(value)  # what the query computes, e.g. with histogram_quantile
    if value in PERCENTILES:
        r.fail(
            "aggregation",
            "percentiles need a source that keeps them; summaries keep count, sum and sum of "
            "squares (use mean, or a Prometheus source)",
        )
        return "rate"
    if value not in AGGREGATIONS:
        r.fail("aggregation", f"one of {', '.join(AGGREGATIONS)}")
        return "rate"
    return str(value)


def read_guardrail(
    data: Any, *, flag: str | None = None, environment: str | None = None
) -> GuardrailSpec:
    """A checked guardrail from its JSON form (``flag`` and ``environment`` may come from
    the URL); raises :class:`InvalidInput` naming every bad field."""
    r = _Reader(data, "guardrail")
    r.unknown(_GUARDRAIL_FIELDS)
    key = r.text("key", _KEY, True, "")
    flag_key = flag or r.text("flag", _KEY, True, "")
    env_key = environment or r.text("environment", _KEY, True, "")
    metric = _metric(r)
    source = r.choice("data_source", SOURCES, "summaries")
    aggregation = _aggregation(r, source)
    if source == "prometheus":
        compare = "regression" if r.data.get("variation_label") is not None else "absolute"
    else:
        compare = "regression" if aggregation in ("rate", "mean") else "absolute"
    comparison = r.choice("comparison", COMPARISONS, compare)
    threshold = r.number("threshold", 0.0, -1e15, 1e15)
    if comparison == "regression":
        if source == "summaries" and aggregation not in ("rate", "mean"):
            r.fail(
                "comparison", "a regression compares rates or means; caps (sum, count) are absolute"
            )
        if not 0.0 <= threshold <= 100.0:
            r.fail("threshold", "a regression's threshold is a relative margin from 0 to 100")
    direction = r.choice("direction", DIRECTIONS, "higher_is_worse")
    min_sample = r.whole("min_sample", DEFAULT_MIN_SAMPLE, 1, 1_000_000_000)
    if source == "summaries" and aggregation in ("rate", "mean") and min_sample < 100:
        r.fail("min_sample", "at least 100: the normal approximation needs it (ADR 0010)")
    window = r.duration("window", DEFAULT_WINDOW, low=60)
    action = r.choice("action", ACTIONS, "pause")
    per = r.data.get("per")
    if per is not None and (not isinstance(per, str) or not _ATTRIBUTE.match(per)):
        r.fail("per", "a context attribute name, such as account")
        per = None
    if per is not None and comparison != "absolute":
        r.fail("per", "per-cohort limits are absolute caps (comparison: absolute)")
    if action == "exclude" and per is None:
        r.fail(
            "action", "exclude needs per: the cohort attribute whose offending value is excluded"
        )
    tool = _tool(r, action, per)
    variation = r.text("variation", _KEY, False)
    stable = r.text("stable", _KEY, False)
    alpha = r.number("alpha", DEFAULT_ALPHA, 0.0001, 0.2)
    query, label, sample_query = _prometheus_fields(r, source, comparison, per)
    r.done()
    return GuardrailSpec(
        key=key, flag=flag_key, environment=env_key, metric=metric, aggregation=aggregation,
        comparison=comparison, threshold=threshold, direction=direction, min_sample=min_sample,
        window=window, action=action, per=per, variation=variation, stable=stable, alpha=alpha,
        data_source=source, query=query, variation_label=label, sample_query=sample_query,
        tool=tool,
    )  # fmt: skip


def _tool(r: _Reader, action: str, per: object) -> str | None:
    """``deny_tool``'s tool: required with it, refused without it."""
    tool: str | None = r.text("tool", _KEY, action == "deny_tool")
    if tool is not None and action != "deny_tool":
        r.fail("tool", "only with action deny_tool")
    if action == "deny_tool" and per is not None:
        r.fail("per", "deny_tool denies the tool to everyone; it has no cohort")
    return tool


def _query_text(r: _Reader, name: str, required: bool) -> str | None:
    value = r.data.get(name)
    if value is None:
        if required:
            r.fail(name, "required with data_source prometheus: a PromQL instant query")
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_QUERY:
        r.fail(name, f"a PromQL query (1 to {MAX_QUERY} characters)")
        return None
    if "\x00" in value:
        r.fail(name, "must not contain NUL characters")
        return None
    return value


def _prometheus_fields(
    r: _Reader, source: str, comparison: str, per: Any
) -> tuple[str | None, str | None, str | None]:
    if source != "prometheus":
        for name in ("query", "variation_label", "sample_query"):
            if r.data.get(name) is not None:
                r.fail(name, "only with data_source prometheus")
        return None, None, None
    query = _query_text(r, "query", True)
    sample_query = _query_text(r, "sample_query", False)
    label = r.data.get("variation_label")
    if label is not None and (not isinstance(label, str) or not _LABEL.match(label)):
        r.fail("variation_label", "a Prometheus label name, such as variant")
        label = None
    if comparison == "regression" and label is None:
        r.fail(
            "variation_label",
            "a regression against the stable variation needs the label that names the "
            "variation of each series",
        )
    if per is not None:
        r.fail("per", "per-cohort caps read lockgate's own summaries, not Prometheus")
    return query, label, sample_query


def _stages(r: _Reader, raw: list[Any]) -> list[StageSpec]:
    stages: list[StageSpec] = []
    last = -1.0
    for i, item in enumerate(raw):
        path = f"stages[{i}]."
        if not isinstance(item, Mapping):
            r.fail(f"stages[{i}]", "must be an object")
            continue
        r.unknown(
            ("name", "percent", "clauses", "min_hold", "min_sample", "approval", "variation"),
            path,
            item,
        )
        percent = r.number("percent", 0.0, 0.001, 100.0, item, path)
        clauses = item.get("clauses", [])
        if not isinstance(clauses, list) or not all(isinstance(c, Mapping) for c in clauses):
            r.fail(f"{path}clauses", "a list of clauses (objects)")
            clauses = []
        hold = r.duration("min_hold", 0, item, path, low=0)
        sample = r.whole("min_sample", 0, 0, 1_000_000_000, item, path)
        approval = item.get("approval", False)
        if not isinstance(approval, bool):
            r.fail(f"{path}approval", "true or false")
            approval = False
        name = item.get("name", "")
        if not isinstance(name, str) or len(name) > 64:
            r.fail(f"{path}name", "at most 64 characters")
            name = ""
        if not clauses and percent < last:
            r.fail(f"{path}percent", "stages only widen: a percentage below an earlier stage's")
        if not clauses:
            last = percent
        stages.append(
            StageSpec(
                percent, tuple(dict(c) for c in clauses), hold, sample, approval,
                name or (f"audience {percent:g}%" if clauses else f"{percent:g}%"),
                _stage_variation(r, item, path),
            )
        )  # fmt: skip
    return stages


def _stage_variation(r: _Reader, item: Mapping[str, Any], path: str) -> str | None:
    value = item.get("variation")
    if value is None:
        return None
    if not isinstance(value, str) or not _KEY.match(value):
        r.fail(f"{path}variation", "a variation key")
        return None
    return value


def read_plan(data: Any, *, flag: str | None = None, environment: str | None = None) -> PlanSpec:
    """A checked staged-rollout plan from its JSON form; raises :class:`InvalidInput`."""
    r = _Reader(data, "rollout plan")
    r.unknown(("flag", "environment", "variation", "stable", "stages", "srm_alpha"))
    flag_key = flag or r.text("flag", _KEY, True, "")
    env_key = environment or r.text("environment", _KEY, True, "")
    variation = r.text("variation", _KEY, True, "")
    stable = r.text("stable", _KEY, False)
    if stable is not None and stable == variation:
        r.fail("stable", "must differ from the variation rolled out")
    srm_alpha = r.number("srm_alpha", 0.001, 0.000001, 0.1)
    raw = r.data.get("stages")
    if not isinstance(raw, list) or not 0 < len(raw) <= MAX_STAGES:
        r.fail("stages", f"a list of 1 to {MAX_STAGES} stages")
        raw = []
    stages = _stages(r, raw)
    r.done()
    return PlanSpec(flag_key, env_key, variation, stable, tuple(stages), srm_alpha)
