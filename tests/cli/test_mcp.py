"""``lockgate mcp`` driven by the ``mcp`` SDK's own client over real stdio, against a real
``lockgate serve``: list the tools, read a behavior, plan a contract, propose a change
(a change request), reduce at once — and fail to approve anything."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from lockgate.mcp.tools import TOOL_NAMES
from tests.delivery.servers import Admin, LockgateServer, lockgate_server
from tests.mcp.checks import assert_audited_as_agent, assert_token_cannot_approve

PROJECT = "shop"
CONTRACT = (
    "ai_generated_software_control:\n"
    "  behavior: refund helper\n  key: refund-helper\n  owner: support\n  risk_level: low\n"
    "  allowed_modes: [off, observe]\n"
)


class World:
    def __init__(self, server: LockgateServer) -> None:
        self.server = server
        self.admin = Admin.connect(server.url)
        self.admin.project(PROJECT, "production")
        r = self.admin.http.patch(
            f"/api/v1/projects/{PROJECT}/environments/production",
            json={"protected": True},
            headers={"If-Match": '"1"'},
        )
        assert r.status_code == 200, r.text
        self.admin.flag(PROJECT, "agent", "mode", risk_tier="high", reason="generated")
        self.bot_token = self._token("bot", "approver", "automation")
        self.standard_token = self._token("erin", "editor", "standard")

    def _token(self, username: str, role: str, kind: str) -> str:
        user = {"username": username, "kind": "service", "reason": "test"}
        assert self.admin.http.post("/api/v1/users", json=user).status_code == 201
        member = {"role": role}
        r = self.admin.http.put(f"/api/v1/projects/{PROJECT}/members/{username}", json=member)
        assert r.status_code == 200, r.text
        body = {"name": f"{username} token", "user": username, "kind": kind}
        r = self.admin.http.post("/api/v1/tokens", json=body)
        assert r.status_code == 201, r.text
        return str(r.json()["token"])


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with lockgate_server(Path(tmp_path_factory.mktemp("mcp"))) as server:
        here = World(server)
        try:
            yield here
        finally:
            here.admin.close()


def _environment(world: World, token: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),
        "LOCKGATE_URL": world.server.url,
        "LOCKGATE_TOKEN": token,
    }


def _params(world: World, token: str) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "lockgate", "mcp"],
        env=_environment(world, token),
    )


def _result(answer: Any) -> dict[str, Any]:
    assert not answer.is_error, answer.content
    return dict(json.loads(answer.content[0].text))


async def _session_run(world: World, log: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with log.open("w", encoding="utf-8") as errlog:
        async with (
            stdio_client(_params(world, world.bot_token), errlog=errlog) as streams,
            ClientSession(*streams) as session,
        ):
            await session.initialize()
            listed = await session.list_tools()
            out["tools"] = {tool.name: tool for tool in listed.tools}
            out["behavior"] = _result(
                await session.call_tool("get_behavior", {"project": PROJECT, "behavior": "agent"})
            )
            out["plan"] = _result(
                await session.call_tool("plan_contract", {"project": PROJECT, "source": CONTRACT})
            )
            out["proposed"] = _result(
                await session.call_tool(
                    "propose_tool",
                    {"project": PROJECT, "tool": "refund", "risk": "write", "reason": "v2"},
                )
            )
            out["approve"] = await session.call_tool(
                "approve_change_request",
                {"id": out["proposed"]["change_request"]["id"]},
            )
            out["bad_input"] = await session.call_tool(
                "propose_tool",
                {"project": PROJECT, "tool": "x", "risk": "nuclear", "reason": "v2"},
            )
            out["killed"] = _result(
                await session.call_tool(
                    "kill_behavior",
                    {"project": PROJECT, "behavior": "agent", "reason": "misbehaving"},
                )
            )
    return out


def test_a_coding_agent_proposes_and_reduces_but_never_approves(
    world: World, tmp_path: Path
) -> None:
    log = tmp_path / "mcp.log"
    out = asyncio.run(_session_run(world, log))
    assert set(out["tools"]) == set(TOOL_NAMES)
    assert not [name for name in out["tools"] if "approve" in name or "apply" in name]
    assert out["tools"]["kill_behavior"].annotations.destructive_hint is True
    assert out["tools"]["get_behavior"].annotations.read_only_hint is True
    assert all(tool.description for tool in out["tools"].values())
    assert out["behavior"]["key"] == "agent"
    assert out["plan"]
    assert out["proposed"]["outcome"] == "change_request_opened"
    request = out["proposed"]["change_request"]
    assert (request["state"], request["object_key"], request["author"]) == (
        "open",
        "refund",
        "bot",
    )
    assert out["approve"].is_error
    assert "approve_change_request" in out["approve"].content[0].text
    assert out["bad_input"].is_error
    assert "risk" in out["bad_input"].content[0].text
    assert out["killed"]
    # one log line per tool call, with the token's prefix (never the token)
    calls = [json.loads(line) for line in log.read_text().splitlines() if "mcp.tool_call" in line]
    assert [c["tool"] for c in calls] == [
        "get_behavior",
        "plan_contract",
        "propose_tool",
        "propose_tool",
        "kill_behavior",
    ]
    assert calls[2]["outcome"] == "proposed"
    assert calls[3]["outcome"] == "error"
    assert world.bot_token.split("_")[1] == calls[0]["token"]
    assert world.bot_token not in log.read_text()
    # the token the agent holds cannot approve the request through the API either
    assert_token_cannot_approve(world.server.url, world.bot_token, world.admin.http, request["id"])
    # the writes are audited with the agent's token
    assert_audited_as_agent(world.admin.http, PROJECT, "bot")


def test_a_standard_token_is_refused(world: World) -> None:
    started = subprocess.run(
        [sys.executable, "-m", "lockgate", "mcp"],
        env=_environment(world, world.standard_token),
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert started.returncode != 0
    assert "needs an automation token" in started.stderr


def test_docs_list_every_tool() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "agents.md").read_text()
    documented = {line.split("`")[1] for line in text.splitlines() if line.startswith("| `")}
    assert set(TOOL_NAMES) <= documented
