"""The OpenFeature provider (lockgate.sdk.openfeature) inside the real OpenFeature SDK.

Resolution details for every type, the reason and error-code mapping, provider events
from a plain client's updates and from a networked client's sync states (against the
scriptable delivery server), and the OpenTelemetry hook's ``feature_flag.evaluation``
span event with lockgate as the provider.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.contrib.hook.opentelemetry import TracingHook
from openfeature.evaluation_context import EvaluationContext
from openfeature.event import EventDetails, ProviderEvent
from openfeature.exception import ErrorCode as OFErrorCode
from openfeature.exception import GeneralError
from openfeature.flag_evaluation import FlagEvaluationDetails, FlagType, Reason
from openfeature.hook import Hook, HookContext, HookHints
from openfeature.provider import ProviderStatus
from openfeature.telemetry import create_evaluation_event
from openfeature.track import TrackingEventDetails
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, NumberDataPoint
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from lockgate.engine import ErrorCode, EvaluationDetail, FlagKind, decode
from lockgate.engine import Reason as LockgateReason
from lockgate.sdk import BackoffPolicy, Client, LockgateClient, SyncTuning
from lockgate.sdk.openfeature import LockgateProvider, affected_flags, to_context
from lockgate.sdk.otel import EvaluationMetricsHook
from tests.engine.factories import (
    JSON,
    bool_flag,
    clause,
    flags_doc,
    rule,
    snapshot_doc,
    split,
    string_flag,
)
from tests.sdk.delivery_server import KEY, DeliveryServer, running

CORP = clause("email", "ends_with", "@corp.example")


def number_flag(key: str, *values: float, serve: int = 0) -> JSON:
    variations = [{"key": f"v{i}", "value": v} for i, v in enumerate(values)]
    return {"key": key, "version": 4, "kind": "number", "variations": variations,
            "default": {"variation": f"v{serve}"}}  # fmt: skip


def json_flag(key: str, value: Any) -> JSON:
    variations = [{"key": "only", "value": value}]
    return {"key": key, "version": 1, "kind": "json", "variations": variations,
            "default": {"variation": "only"}}  # fmt: skip


def mode_flag(key: str, **fields: Any) -> JSON:
    modes = ["off", "observe", "full"]
    flag: JSON = {"key": key, "version": 2, "kind": "mode", "off_variation": "off",
                  "variations": [{"key": m, "value": m} for m in modes],
                  "default": {"variation": "observe"}}  # fmt: skip
    return flag | fields


def shop(version: int = 1) -> JSON:
    flags = [
        bool_flag("beta", version=3, serve=False, rules=[rule("corp", CORP, serve="on")],
                  targets=[{"variation": "on", "values": ["vip"]}]),
        string_flag("banner", default=split(("a", 50_000), ("b", 50_000))),
        string_flag("launch", rules=[rule("later", clause("now", "after", "2026-01-01"))]),
        mode_flag("agent"),
        mode_flag("gated", prerequisites=[{"flag": "beta", "variation": "on"}]),
        mode_flag("dormant", on=False, off_variation=None),
        number_flag("limit", 10, 2.5, 3.0),
        number_flag("ratio", 0.25),
        json_flag("layout", {"columns": 3}),
        json_flag("steps", [1, 2]),
        json_flag("plain", "text"),
    ]  # fmt: skip
    return flags_doc(*flags, version=version)


@pytest.fixture
def openfeature() -> Iterator[None]:
    yield
    api.clear_providers()
    api.clear_hooks()


def _client(provider: LockgateProvider, domain: str = "lockgate") -> OpenFeatureClient:
    api.set_provider_and_wait(provider, domain)
    return api.get_client(domain)


@pytest.fixture
def flags(openfeature: None) -> OpenFeatureClient:
    return _client(LockgateProvider(LockgateClient(shop())))


def _details(flags: OpenFeatureClient, kind: FlagType, key: str, default: Any, ctx: Any) -> Any:
    if kind is FlagType.BOOLEAN:
        return flags.get_boolean_details(key, default, ctx)
    if kind is FlagType.STRING:
        return flags.get_string_details(key, default, ctx)
    if kind is FlagType.INTEGER:
        return flags.get_integer_details(key, default, ctx)
    if kind is FlagType.FLOAT:
        return flags.get_float_details(key, default, ctx)
    return flags.get_object_details(key, default, ctx)


# -- resolution ----------------------------------------------------------------------------


def test_boolean_details_carry_variant_reason_and_metadata(flags: OpenFeatureClient) -> None:
    details = flags.get_boolean_details(
        "beta", False, EvaluationContext("u1", {"email": "a@corp.example"})
    )
    assert details == FlagEvaluationDetails(
        flag_key="beta", value=True, variant="on", reason="TARGETING_MATCH",
        flag_metadata={"version": "3", "ruleId": "corp", "lockgateReason": "RULE_MATCH"},
    )  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "key", "default", "expected"),
    [
        (FlagType.BOOLEAN, "beta", False, (True, "on", "TARGETING_MATCH", "TARGET_MATCH")),
        (FlagType.STRING, "banner", "?", ("a", "a", "SPLIT", "SPLIT")),
        (FlagType.STRING, "agent", "off", ("observe", "observe", "DEFAULT", "FALLTHROUGH")),
        (FlagType.STRING, "gated", "?", ("observe", "observe", "DEFAULT", "FALLTHROUGH")),
        (FlagType.STRING, "dormant", "fallback", ("fallback", None, "DISABLED", "OFF")),
        (FlagType.INTEGER, "limit", 0, (10, "v0", "DEFAULT", "FALLTHROUGH")),
        (FlagType.FLOAT, "limit", 0.0, (10.0, "v0", "DEFAULT", "FALLTHROUGH")),
        (FlagType.FLOAT, "ratio", 0.0, (0.25, "v0", "DEFAULT", "FALLTHROUGH")),
        (FlagType.OBJECT, "layout", {}, ({"columns": 3}, "only", "DEFAULT", "FALLTHROUGH")),
        (FlagType.OBJECT, "steps", {}, ([1, 2], "only", "DEFAULT", "FALLTHROUGH")),
    ],
)
def test_every_type_resolves(
    flags: OpenFeatureClient, kind: FlagType, key: str, default: Any, expected: tuple[Any, ...]
) -> None:
    details = _details(flags, kind, key, default, EvaluationContext("vip"))
    value, variant, reason, native = expected
    assert (details.value, type(details.value)) == (value, type(value))
    assert (details.variant, details.reason, details.error_code) == (variant, reason, None)
    assert details.flag_metadata["lockgateReason"] == native


def test_a_failed_prerequisite_is_default(flags: OpenFeatureClient) -> None:
    details = flags.get_string_details("gated", "?", EvaluationContext("u1"))
    assert (details.value, details.reason) == ("off", "DEFAULT")
    assert details.flag_metadata["lockgateReason"] == "PREREQUISITE_FAILED"


def test_whole_floats_are_integers_and_fractions_are_not(openfeature: None) -> None:
    doc = shop()
    doc["flags"]["limit"]["default"] = {"variation": "v2"}  # 3.0
    lockgate = LockgateClient(doc)
    flags = _client(LockgateProvider(lockgate))
    whole = flags.get_integer_details("limit", 0)
    assert (whole.value, type(whole.value), whole.variant) == (3, int, "v2")
    doc["flags"]["limit"]["default"] = {"variation": "v1"}  # 2.5
    doc["version"] = 2
    assert lockgate.update(doc)
    fraction = flags.get_integer_details("limit", 7)
    assert (fraction.value, fraction.error_code, fraction.reason) == (
        7, OFErrorCode.TYPE_MISMATCH, Reason.ERROR
    )  # fmt: skip
    assert flags.get_float_details("limit", 0.0).value == 2.5


@pytest.mark.parametrize(
    ("kind", "key", "default", "code"),
    [
        (FlagType.BOOLEAN, "nope", True, OFErrorCode.FLAG_NOT_FOUND),
        (FlagType.BOOLEAN, "banner", False, OFErrorCode.TYPE_MISMATCH),
        (FlagType.STRING, "beta", "x", OFErrorCode.TYPE_MISMATCH),
        (FlagType.INTEGER, "agent", 1, OFErrorCode.TYPE_MISMATCH),
        (FlagType.OBJECT, "limit", {"d": 1}, OFErrorCode.TYPE_MISMATCH),
        (FlagType.OBJECT, "plain", ["d"], OFErrorCode.TYPE_MISMATCH),  # a JSON scalar
        (FlagType.STRING, "banner", "?", OFErrorCode.TARGETING_KEY_MISSING),
    ],
)
def test_errors_map_to_openfeature_codes(
    flags: OpenFeatureClient, kind: FlagType, key: str, default: Any, code: OFErrorCode
) -> None:
    details = _details(flags, kind, key, default, EvaluationContext())
    assert (details.value, details.reason, details.error_code) == (default, Reason.ERROR, code)
    assert details.variant is None
    assert details.error_message


class FixedClient:
    """A client answering every evaluation with one result (errors a snapshot cannot hold)."""

    ready = True
    snapshot = decode(snapshot_doc())

    def __init__(self, code: ErrorCode) -> None:
        self.code = code

    def typed_detail(
        self, key: str, context: Any, default: Any, kind: FlagKind
    ) -> EvaluationDetail:
        return EvaluationDetail(default, None, LockgateReason.ERROR, None, self.code, 5)

    def on_update(self, listener: Any) -> None:
        pass


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (ErrorCode.MALFORMED_FLAG, OFErrorCode.PARSE_ERROR),
        (ErrorCode.INVALID_CONTEXT, OFErrorCode.INVALID_CONTEXT),
        (ErrorCode.PROVIDER_NOT_READY, OFErrorCode.PROVIDER_NOT_READY),
        (ErrorCode.GENERAL, OFErrorCode.GENERAL),
    ],
)
def test_errors_a_snapshot_cannot_produce(code: ErrorCode, expected: OFErrorCode) -> None:
    resolution = LockgateProvider(FixedClient(code)).resolve_string_details("f", "d")
    assert (resolution.value, resolution.error_code, resolution.reason) == ("d", expected, "ERROR")
    assert resolution.flag_metadata == {"version": "5", "lockgateReason": "ERROR"}


def test_a_client_without_a_snapshot_is_not_ready() -> None:
    resolution = LockgateProvider(LockgateClient()).resolve_boolean_details("beta", True)
    assert (resolution.value, resolution.error_code) == (True, OFErrorCode.PROVIDER_NOT_READY)


def test_the_targeting_key_is_lockgates_key_and_dates_are_iso(flags: OpenFeatureClient) -> None:
    assert flags.get_boolean_value("beta", False, EvaluationContext("vip", {"key": "u1"}))
    assert flags.get_boolean_value("beta", False, EvaluationContext(None, {"key": "vip"}))
    later = EvaluationContext("u1", {"now": datetime(2026, 6, 1, tzinfo=UTC)})
    assert flags.get_string_details("launch", "?", later).reason == "TARGETING_MATCH"
    assert to_context(later) == {"key": "u1", "now": "2026-06-01T00:00:00+00:00"}
    assert to_context(None) == {}


def test_track_without_a_tracking_client_is_a_logged_no_op(
    flags: OpenFeatureClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, "lockgate.sdk.openfeature"):
        flags.track("checkout", EvaluationContext("u1"))
    assert "tracking event 'checkout' dropped" in caplog.text


class TrackingClient(LockgateClient):
    def __init__(self, fail: bool = False) -> None:
        super().__init__(shop())
        self.tracked: list[tuple[str, dict[str, Any], float]] = []
        self.fail = fail

    def track(self, metric: str, context: dict[str, Any], value: float = 1.0) -> None:
        if self.fail:
            raise RuntimeError("a tracking bug")
        self.tracked.append((metric, context, value))


def test_track_is_the_clients_track(openfeature: None) -> None:
    client = TrackingClient()
    flags = _client(LockgateProvider(client))
    flags.track("errors", EvaluationContext("u1", {"account": "a1"}))
    flags.track("latency_ms", EvaluationContext("u2"), TrackingEventDetails(value=182.5))
    assert client.tracked == [
        ("errors", {"key": "u1", "account": "a1"}, 1.0),
        ("latency_ms", {"key": "u2"}, 182.5),
    ]
    failing = _client(LockgateProvider(TrackingClient(fail=True)), "failing")
    failing.track("errors", EvaluationContext("u1"))  # never raises into the application


def test_the_sdk_core_does_not_need_openfeature() -> None:
    code = (
        "import sys; sys.modules['openfeature'] = None\n"
        "import lockgate.sdk, lockgate.sdk.openfeature_terms\n"
        "try:\n    import lockgate.sdk.openfeature\nexcept ImportError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'lockgate[openfeature]'" in out.stdout


# -- events ----------------------------------------------------------------------------------


class Events:
    """Records the provider events one OpenFeature client's handlers receive."""

    KINDS = (
        ProviderEvent.PROVIDER_READY,
        ProviderEvent.PROVIDER_STALE,
        ProviderEvent.PROVIDER_ERROR,
        ProviderEvent.PROVIDER_CONFIGURATION_CHANGED,
    )

    def __init__(self, client: OpenFeatureClient) -> None:
        self.cond = threading.Condition()
        self.seen: list[tuple[ProviderEvent, EventDetails]] = []
        for kind in self.KINDS:
            client.add_handler(kind, self._handler(kind))

    def _handler(self, kind: ProviderEvent) -> Callable[[EventDetails], None]:
        def record(details: EventDetails) -> None:
            with self.cond:
                self.seen.append((kind, details))
                self.cond.notify_all()

        return record

    def wait(self, kind: ProviderEvent, count: int = 1, timeout: float = 10.0) -> EventDetails:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.of(kind)) >= count, timeout), self.seen
            return self.of(kind)[count - 1]

    def of(self, kind: ProviderEvent) -> list[EventDetails]:
        return [details for seen, details in self.seen if seen is kind]


def test_updates_are_configuration_changes(openfeature: None) -> None:
    lockgate = LockgateClient(shop())
    flags = _client(LockgateProvider(lockgate))
    events = Events(flags)
    events.wait(ProviderEvent.PROVIDER_READY)  # run at once: the provider is ready
    changed = shop(version=2)
    changed["flags"]["beta"]["on"] = False
    assert lockgate.update(changed)
    details = events.wait(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED)
    assert details.flags_changed == ["beta", "gated"]  # gated has beta as a prerequisite
    assert details.metadata == {"version": 2}
    assert details.provider_name == "lockgate"


def test_initialize_fails_without_data_and_ready_follows(openfeature: None) -> None:
    lockgate = LockgateClient()
    provider = LockgateProvider(lockgate, init_timeout=0.05)
    with pytest.raises(Exception, match="nothing to serve"):
        api.set_provider_and_wait(provider, "late")
    flags = api.get_client("late")
    assert flags.get_provider_status() is ProviderStatus.ERROR
    events = Events(flags)
    lockgate.update(shop())
    events.wait(ProviderEvent.PROVIDER_READY)
    assert flags.get_provider_status() is ProviderStatus.READY
    assert events.of(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED) == []
    assert flags.get_string_value("agent", "off") == "observe"


def test_affected_flags_follow_segments_and_prerequisites() -> None:
    segment = {"key": "staff", "version": 1, "included": ["u1"]}
    in_staff = rule("staff", clause(None, "segment_match", "staff"), serve="b")
    before = snapshot_doc(
        {"a": string_flag("a", rules=[in_staff]), "b": string_flag("b"),
         "c": mode_flag("c", prerequisites=[{"flag": "a", "variation": "b"}]),
         "d": string_flag("d")},
        {"staff": segment},
    )  # fmt: skip
    after = snapshot_doc(
        {**before["flags"], "d": string_flag("d", default={"variation": "b"})},
        {"staff": segment | {"included": ["u2"]}},
    )
    assert affected_flags(decode(before), decode(after)) == ["a", "c", "d"]
    assert affected_flags(None, decode(after)) == ["a", "b", "c", "d"]


FAST = SyncTuning(backoff=BackoffPolicy(initial=0.02, cap=0.2, reset_after=60.0))


@pytest.fixture
def networked() -> Iterator[list[Client]]:
    clients: list[Client] = []
    yield clients
    for client in clients:
        client.close()


def _networked(clients: list[Client], url: str, *, key: str = KEY, **options: Any) -> Client:
    settings: dict[str, Any] = {"tuning": FAST, "events": False, "connect_timeout": 1.0,
                                "read_timeout": 5.0}  # fmt: skip
    client = Client(key, url, **(settings | options))
    clients.append(client)
    return client


def test_sync_states_become_provider_events(openfeature: None, networked: list[Client]) -> None:
    server = DeliveryServer()
    server.publish(shop())
    with running(server):
        flags = _client(LockgateProvider(_networked(networked, server.url)), "synced")
        assert flags.get_provider_status() is ProviderStatus.READY
        events = Events(flags)
        assert flags.get_string_value("agent", "off") == "observe"
    stale = events.wait(ProviderEvent.PROVIDER_STALE)
    assert flags.get_provider_status() is ProviderStatus.STALE
    assert stale.message
    assert flags.get_string_value("agent", "off") == "observe"  # last known data
    changed = shop(version=2)
    changed["flags"]["agent"]["default"] = {"variation": "full"}
    server.publish(changed)
    with running(server):
        events.wait(ProviderEvent.PROVIDER_READY, count=2)  # the first ran on add_handler
        changes = events.wait(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED)
        assert changes.flags_changed == ["agent"]
        assert flags.get_provider_status() is ProviderStatus.READY
        assert flags.get_string_value("agent", "off") == "full"


def test_a_rejected_key_is_a_provider_error(openfeature: None, networked: list[Client]) -> None:
    server = DeliveryServer()
    server.publish(shop())
    with running(server):
        client = _networked(
            networked, server.url, bootstrap=shop(), key="lgs_other_key", start=False
        )
        provider = LockgateProvider(client, init_timeout=0.5)
        client.start()  # after the provider listens: it learns why the state changed
        flags = api.get_client("rejected")
        events = Events(flags)  # before the provider: the SDK's own ERROR event is seen
        with pytest.raises(GeneralError, match=r"in ERROR \(SDK key rejected \(HTTP 401\)\)"):
            api.set_provider_and_wait(provider, "rejected")
        error = events.wait(ProviderEvent.PROVIDER_ERROR)
        assert error.error_code == OFErrorCode.GENERAL
        assert flags.get_provider_status() is ProviderStatus.ERROR
        assert flags.get_string_value("agent", "off") == "observe"  # the bootstrap data


def test_stale_data_at_initialization_is_announced(
    openfeature: None, networked: list[Client]
) -> None:
    client = _networked(networked, "http://127.0.0.1:9", bootstrap=shop())
    flags = _client(LockgateProvider(client, init_timeout=0.2), "offline")
    events = Events(flags)
    assert flags.get_string_value("agent", "off") == "observe"
    events.wait(ProviderEvent.PROVIDER_STALE)
    assert flags.get_provider_status() is ProviderStatus.STALE


# -- telemetry ---------------------------------------------------------------------------------


class Captured(Hook):
    """Keeps OpenFeature's own evaluation event (openfeature.telemetry) of each evaluation."""

    def __init__(self) -> None:
        self.events: list[Any] = []

    def finally_after(
        self, hook_context: HookContext, details: FlagEvaluationDetails[Any], hints: HookHints
    ) -> None:
        self.events.append(create_evaluation_event(hook_context, details))


def test_the_opentelemetry_hook_records_lockgate_evaluations(flags: OpenFeatureClient) -> None:
    exporter = InMemorySpanExporter()
    tracing = TracerProvider()
    tracing.add_span_processor(SimpleSpanProcessor(exporter))
    captured = Captured()
    api.add_hooks([TracingHook(), captured])
    context = EvaluationContext("u1", {"email": "a@corp.example"})
    with tracing.get_tracer("test").start_as_current_span("request"):
        flags.get_boolean_value("beta", False, context)
        flags.get_string_value("nope", "dflt", context)
    (span,) = exporter.get_finished_spans()
    evaluations = [e for e in span.events if e.name == "feature_flag.evaluation"]
    hit, miss = (dict(e.attributes or {}) for e in evaluations)
    assert [e.name for e in span.events if e not in evaluations] == ["exception"]  # the miss
    assert hit == {
        "feature_flag.key": "beta", "feature_flag.result.value": "true",
        "feature_flag.result.variant": "on", "feature_flag.result.reason": "targeting_match",
        "feature_flag.context.id": "u1", "feature_flag.provider.name": "lockgate",
    }  # fmt: skip
    assert miss["feature_flag.result.reason"] == "error"
    assert miss["error.type"] == "flag_not_found"
    assert miss["feature_flag.result.value"] == '"dflt"'
    # The flag version reaches telemetry through the well-known metadata key "version".
    assert captured.events[0].attributes["feature_flag.version"] == "3"


def test_the_metrics_hook_counts_evaluations_with_the_variant(flags: OpenFeatureClient) -> None:
    reader = InMemoryMetricReader()
    api.add_hooks([EvaluationMetricsHook(MeterProvider(metric_readers=[reader]))])
    corp = EvaluationContext("u1", {"email": "a@corp.example"})
    other = EvaluationContext("u2", {"email": "b@else.example"})
    for _ in range(3):
        flags.get_boolean_value("beta", False, corp)
    flags.get_boolean_value("beta", False, other)
    flags.get_string_value("nope", "dflt", corp)
    data = reader.get_metrics_data()
    assert data is not None
    (metric,) = [
        m
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for m in scope.metrics
        if m.name == "feature_flag.evaluations"
    ]
    counts = {
        tuple(sorted(dict(point.attributes or {}).items())): point.value
        for point in metric.data.data_points
        if isinstance(point, NumberDataPoint)
    }
    base = {"feature_flag.provider.name": "lockgate"}
    on = base | {"feature_flag.key": "beta", "feature_flag.result.variant": "on",
                 "feature_flag.result.reason": "targeting_match"}  # fmt: skip
    off = base | {"feature_flag.key": "beta", "feature_flag.result.variant": "off",
                  "feature_flag.result.reason": "default"}  # fmt: skip
    missing = base | {"feature_flag.key": "nope", "feature_flag.result.variant": "",
                      "feature_flag.result.reason": "error",
                      "error.type": "flag_not_found"}  # fmt: skip
    assert counts == {
        tuple(sorted(on.items())): 3,
        tuple(sorted(off.items())): 1,
        tuple(sorted(missing.items())): 1,
    }
