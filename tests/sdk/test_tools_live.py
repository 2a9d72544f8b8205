"""Tool calls through the real SDK against a real ``lockgate serve``, on both databases:
one tool denied through the API reaches a running client at once, and a guarded tool
waits for a person's runtime approval."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from lockgate.sdk import Client, ToolDeniedError, ToolOutcome, ToolReason
from tests.conftest import BACKENDS
from tests.delivery.servers import (
    LiveProject,
    LockgateServer,
    live_project,
    unique,
)

PROJECT = "lab"
ENV = "production"
MODES = [{"key": m, "value": m} for m in ("off", "observe", "approval_required", "full")]


class Live(LiveProject):
    def __init__(self, server: LockgateServer) -> None:
        super().__init__(server, PROJECT, ENV)

    def behavior(self) -> str:
        """A low-risk mode behavior: ``careful`` needs approvals, everyone else ``full``."""
        key = unique("agent")
        self.admin.flag(PROJECT, key, "mode", risk_tier="low", reason="generated")
        self.admin.configure(
            PROJECT,
            key,
            ENV,
            on=True,
            targets=[{"variation": "approval_required", "values": ["careful"]}],
            default={"variation": "full"},
        )
        return key

    def tool(self, risk: str = "write") -> str:
        key = unique("tool")
        body = {"key": key, "risk": risk, "reason": "the agent needs it"}
        r = self.admin.http.post(f"/api/v1/projects/{PROJECT}/tools", json=body)
        assert r.status_code == 201, r.text
        return key


@pytest.fixture(scope="module", params=BACKENDS)
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    data = tmp_path_factory.mktemp(f"tools-{request.param}")
    with live_project(data, request.param, Live) as here:
        yield here


def _client_with(live: Live, tool: str) -> Client:
    """A started client, once its snapshot has ``tool``."""
    sdk = Client(live.key, live.server.url, events=False, metrics=False)
    assert sdk.wait_until_ready(10)
    deadline = time.monotonic() + 10
    while tool not in sdk.snapshot.tools:
        assert time.monotonic() < deadline, "the tool never reached the client"
        time.sleep(0.02)
    return sdk


def test_denying_one_tool_reaches_a_running_client_in_under_a_second(live: Live) -> None:
    behavior, tool = live.behavior(), live.tool()
    other = live.tool()
    with _client_with(live, other) as sdk:
        context = {"key": "u1"}
        assert sdk.authorize_tool(behavior, tool, context).outcome is ToolOutcome.ALLOW
        started = time.monotonic()
        r = live.admin.http.post(
            f"/api/v1/projects/{PROJECT}/tools/{tool}/deny", json={"reason": "incident"}
        )
        assert r.status_code == 200, r.text
        while sdk.authorize_tool(behavior, tool, context).allowed:
            assert time.monotonic() - started < 5, "the denial never reached the client"
            time.sleep(0.005)
        reached = time.monotonic() - started
        decision = sdk.authorize_tool(behavior, tool, context)
        assert (decision.reason, decision.rule) == (ToolReason.TOOL_DENIED, "everyone")
        assert sdk.authorize_tool(behavior, other, context).allowed  # the rest is untouched
        assert sdk.mode(behavior, context).value == "full"
    assert reached < 1.0


def test_a_guarded_tool_waits_for_a_runtime_approval(live: Live) -> None:
    behavior, tool = live.behavior(), live.tool()
    calls: list[str] = []
    with _client_with(live, tool) as sdk:

        @sdk.guard_tool(behavior, tool, summary=lambda order, context: f"refund {order}")
        def refund(order: str, context: dict[str, Any]) -> str:
            calls.append(order)
            return f"refunded {order}"

        assert refund("o-1", {"key": "u1"}) == "refunded o-1"  # full: allowed at once
        out: list[Any] = []

        def call() -> None:
            try:
                out.append(refund("o-2", {"key": "careful"}))
            except ToolDeniedError as exc:
                out.append(exc)

        thread = threading.Thread(target=call, daemon=True)
        thread.start()
        asked = live.pending(behavior)
        assert (asked["action"], asked["summary"]) == (f"tool:{tool}", "refund o-2")
        assert calls == ["o-1"]  # not called while it waits
        r = live.admin.http.post(
            f"/api/v1/runtime-approvals/{asked['id']}/approve", json={"comment": "ok"}
        )
        assert r.status_code == 200, r.text
        thread.join(20)
        assert out == ["refunded o-2"]
        assert calls == ["o-1", "o-2"]

        thread = threading.Thread(target=lambda: out.append(_denied(refund)), daemon=True)
        thread.start()
        asked = live.pending(behavior)
        r = live.admin.http.post(
            f"/api/v1/runtime-approvals/{asked['id']}/deny", json={"comment": "no"}
        )
        assert r.status_code == 200, r.text
        thread.join(20)
        refused = out[-1]
        assert isinstance(refused, ToolDeniedError)
        assert refused.approval is not None
        assert refused.approval.status.value == "denied"
        assert calls == ["o-1", "o-2"]


def _denied(refund: Any) -> Any:
    try:
        return refund("o-3", {"key": "careful"})
    except ToolDeniedError as exc:
        return exc
