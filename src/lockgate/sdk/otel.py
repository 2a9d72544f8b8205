"""Evaluations as OpenTelemetry metrics, with the variant as an attribute.

Needs the OpenFeature SDK and the OpenTelemetry API (``pip install 'lockgate[openfeature]'
opentelemetry-api``). Traces get evaluation events from ``openfeature-hooks-opentelemetry``'s
``TracingHook`` (docs/openfeature.md); this hook adds the metric::

    from openfeature import api
    from lockgate.sdk.otel import EvaluationMetricsHook

    api.add_hooks([EvaluationMetricsHook()])

Each evaluation adds one to the counter ``feature_flag.evaluations`` (unit
``{evaluation}``) with the attributes ``feature_flag.key``, ``feature_flag.result.variant``
(``""`` when the caller's default was served), ``feature_flag.result.reason`` (lowercase),
``feature_flag.provider.name`` and, on errors, ``error.type``. Context attributes are never
added (they would make every user a series).
"""

from __future__ import annotations

from typing import Any

try:
    from openfeature.flag_evaluation import FlagEvaluationDetails
    from openfeature.hook import Hook, HookContext, HookHints
    from opentelemetry import metrics
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(
        "lockgate.sdk.otel needs the OpenFeature SDK and the OpenTelemetry API: "
        "pip install 'lockgate[openfeature]' opentelemetry-api"
    ) from exc

__all__ = ["EvaluationMetricsHook"]

COUNTER = "feature_flag.evaluations"


class EvaluationMetricsHook(Hook):
    """An OpenFeature hook counting evaluations by flag, variant and reason."""

    def __init__(self, meter_provider: metrics.MeterProvider | None = None) -> None:
        meter = metrics.get_meter("lockgate.sdk", meter_provider=meter_provider)
        self._counter = meter.create_counter(
            COUNTER, unit="{evaluation}", description="Feature flag evaluations"
        )

    def finally_after(
        self,
        hook_context: HookContext,
        details: FlagEvaluationDetails[Any],
        hints: HookHints,
    ) -> None:
        provider = hook_context.provider_metadata
        attributes: dict[str, str] = {
            "feature_flag.key": details.flag_key,
            "feature_flag.result.variant": details.variant or "",
            "feature_flag.result.reason": str(details.reason or "unknown").lower(),
            "feature_flag.provider.name": provider.name if provider is not None else "",
        }
        if details.error_code is not None:
            attributes["error.type"] = str(details.error_code.value).lower()
        self._counter.add(1, attributes)
