"""The variations in force on log lines: the scope, the logging filter, the structlog
processor, with a real networked client evaluating from its bootstrap snapshot."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Iterator

import pytest
import structlog

from lockgate.engine import Mode
from lockgate.sdk import Client
from lockgate.sdk.logs import (
    MAX_NOTED,
    VariationsFilter,
    add_variations,
    current_variations,
    variations_scope,
)
from tests.engine.factories import JSON, bool_flag, clause, flags_doc, rule

CORP = clause("email", "ends_with", "@corp.example")
ANN = {"key": "ann", "email": "ann@corp.example"}
BOB = {"key": "bob", "email": "bob@else.example"}


def mode_flag(key: str) -> JSON:
    return {
        "key": key, "kind": "mode", "version": 1, "off_variation": "off",
        "variations": [{"key": m.value, "value": m.value} for m in Mode],
        "rules": [rule("corp", CORP, serve="draft_only")],
        "default": {"variation": "observe"},
    }  # fmt: skip


SNAPSHOT = flags_doc(
    bool_flag("beta", serve=False, rules=[rule("corp", CORP, serve="on")]), mode_flag("agent")
)


@pytest.fixture
def client() -> Iterator[Client]:
    with Client(
        "lgs_key", "http://127.0.0.1:9", bootstrap=SNAPSHOT, start=False, events=False,
        log_variations=True,
    ) as sdk:  # fmt: skip
        yield sdk


def test_a_scope_notes_what_each_behavior_served(client: Client) -> None:
    assert client.mode("agent", ANN) is Mode.DRAFT_ONLY
    assert current_variations() == {}  # outside a scope nothing is kept
    with variations_scope():
        assert client.mode("agent", ANN) is Mode.DRAFT_ONLY
        assert client.variation("beta", BOB, False) is False
        assert current_variations() == {"agent": "draft_only", "beta": "off"}
        client.variation("beta", ANN, False)  # the last one served wins
        client.variation("missing", ANN, "dflt")  # the caller's default: no variation
        assert current_variations() == {"agent": "draft_only", "beta": "on", "missing": "-"}
    assert current_variations() == {}


def test_a_client_without_the_option_notes_nothing() -> None:
    with (
        Client("lgs_key", "http://127.0.0.1:9", bootstrap=SNAPSHOT, start=False) as plain,
        variations_scope(),
    ):
        plain.mode("agent", ANN)
        assert current_variations() == {}


def test_a_scope_keeps_a_bounded_number_of_behaviors(client: Client) -> None:
    with variations_scope() as noted:
        for index in range(MAX_NOTED + 10):
            client.variation(f"flag-{index}", ANN, None)
        client.variation("flag-0", ANN, None)
    assert len(noted) == MAX_NOTED
    assert "flag-0" in noted
    assert f"flag-{MAX_NOTED}" not in noted


def test_the_logging_filter_puts_them_on_each_line(client: Client) -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(message)s [%(lockgate)s]"))
    handler.addFilter(VariationsFilter())
    log = logging.getLogger("tests.sdk.app")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        log.info("before")
        with variations_scope():
            client.mode("agent", ANN)
            client.variation("beta", BOB, False)
            log.info("refund drafted")
    finally:
        log.removeHandler(handler)
    assert out.getvalue().splitlines() == [
        "before []",
        "refund drafted [agent=draft_only beta=off]",
    ]


def test_the_structlog_processor_adds_them_as_a_field(client: Client) -> None:
    structlog.configure(
        processors=[add_variations, structlog.processors.JSONRenderer(sort_keys=True)],
        logger_factory=structlog.testing.CapturingLoggerFactory(),
        cache_logger_on_first_use=False,
    )
    try:
        log = structlog.get_logger()
        log.info("outside")
        with variations_scope():
            client.mode("agent", BOB)
            log.info("inside")
        lines = [call.args[0] for call in structlog.get_config()["logger_factory"].logger.calls]
    finally:
        structlog.reset_defaults()
    assert lines == [
        '{"event": "outside"}',
        '{"event": "inside", "lockgate": {"agent": "observe"}}',
    ]


def test_concurrent_requests_keep_their_own_scopes(client: Client) -> None:
    async def request(context: dict[str, str], pause: float) -> dict[str, str]:
        with variations_scope():
            client.mode("agent", context)
            await asyncio.sleep(pause)  # the other request evaluates meanwhile
            return dict(current_variations())

    async def both() -> list[dict[str, str]]:
        return list(await asyncio.gather(request(ANN, 0.02), request(BOB, 0.0)))

    assert asyncio.run(both()) == [{"agent": "draft_only"}, {"agent": "observe"}]
