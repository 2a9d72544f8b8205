"""MCP over streamable HTTP at ``/mcp`` of a real ``lockgate serve`` (SQLite and
PostgreSQL), driven by the ``mcp`` SDK's own client: the same tools as stdio, each call
with the request's own automation token through the governed path — and no way to
approve anything."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from fastapi.testclient import TestClient
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from lockgate.api.app import create_app
from lockgate.mcp.tools import TOOL_NAMES
from lockgate.settings import Settings
from tests.conftest import scratch_pg_database
from tests.delivery.servers import ADMIN_TOKEN, Admin, LockgateServer, lockgate_server
from tests.mcp.checks import assert_audited_as_agent, assert_token_cannot_approve

PROJECT, OTHER = "shop", "warehouse"
CONTRACT = (
    "ai_generated_software_control:\n"
    "  behavior: refund helper\n  key: refund-helper\n  owner: support\n  risk_level: high\n"
    "  allowed_modes: [off, observe]\n"
    "  environments:\n    production: {state: everyone, mode: observe}\n"
)
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "probe", "version": "1"},
    },
}


class World:
    def __init__(self, server: LockgateServer) -> None:
        self.server = server
        self.admin = Admin.connect(server.url)
        self.admin.project(PROJECT, "production")
        self.admin.project(OTHER, "production")
        r = self.admin.http.patch(
            f"/api/v1/projects/{PROJECT}/environments/production",
            json={"protected": True},
            headers={"If-Match": '"1"'},
        )
        assert r.status_code == 200, r.text
        self.admin.flag(PROJECT, "agent", "mode", risk_tier="high", reason="generated")
        self.admin.flag(OTHER, "stock-agent", "mode", risk_tier="low", reason="generated")
        self.bot_token = self._token("bot", "approver", "automation")
        self.scoped_token = self._token("scoped", "editor", "automation", project=PROJECT)
        self.person_token = self._token("erin", "editor", "standard")
        self.revoked_token = self._token("gone", "editor", "automation")
        prefix = self.revoked_token.split("_")[1]
        r = self.admin.http.delete(f"/api/v1/tokens/{prefix}", headers={"X-Lockgate-Reason": "x"})
        assert r.status_code == 200, r.text

    def _token(self, username: str, role: str, kind: str, project: str | None = None) -> str:
        user = {"username": username, "kind": "service", "reason": "test"}
        assert self.admin.http.post("/api/v1/users", json=user).status_code == 201
        for key in (PROJECT, OTHER):
            url = f"/api/v1/projects/{key}/members/{username}"
            r = self.admin.http.put(url, json={"role": role})
            assert r.status_code == 200, r.text
        body = {"name": f"{username} token", "user": username, "kind": kind, "project": project}
        r = self.admin.http.post("/api/v1/tokens", json=body)
        assert r.status_code == 201, r.text
        return str(r.json()["token"])


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    data = Path(tmp_path_factory.mktemp("mcp-http"))
    extra = ("--log-level", "info")
    with ExitStack() as stack:
        url = stack.enter_context(scratch_pg_database()) if request.param == "postgres" else ""
        server = stack.enter_context(lockgate_server(data, database_url=url, extra=extra))
        here = World(server)
        try:
            yield here
        finally:
            here.admin.close()


def _result(answer: Any) -> dict[str, Any]:
    assert not answer.is_error, answer.content
    return dict(json.loads(answer.content[0].text))


async def _in_session(world: World, token: str, calls: list[tuple[str, dict[str, Any]]]) -> Any:
    """The tools listed, then each call's result, in one MCP session over HTTP."""
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30.0) as http,
        streamable_http_client(f"{world.server.url}/mcp", http_client=http) as streams,
        ClientSession(streams[0], streams[1]) as session,
    ):
        await session.initialize()
        listed = await session.list_tools()
        results = [await session.call_tool(name, args) for name, args in calls]
    return {tool.name: tool for tool in listed.tools}, results


def _session(world: World, token: str, *calls: tuple[str, dict[str, Any]]) -> Any:
    return asyncio.run(_in_session(world, token, list(calls)))


def test_an_agent_reads_plans_proposes_and_reduces_but_never_approves(world: World) -> None:
    tools, results = _session(
        world,
        world.bot_token,
        ("get_behavior", {"project": PROJECT, "behavior": "agent"}),
        ("plan_contract", {"project": PROJECT, "source": CONTRACT}),
        ("propose_tool", {"project": PROJECT, "tool": "refund", "risk": "write", "reason": "v2"}),
        ("approve_change_request", {"id": "1"}),
        ("propose_tool", {"project": PROJECT, "tool": "x", "risk": "nuclear", "reason": "v2"}),
        ("kill_behavior", {"project": PROJECT, "behavior": "agent", "reason": "misbehaving"}),
    )
    behavior, plan, proposed, approve, bad_input, killed = results
    assert set(tools) == set(TOOL_NAMES)
    assert not [name for name in tools if "approve" in name or "apply" in name]
    assert tools["kill_behavior"].annotations.destructive_hint is True
    assert tools["get_behavior"].annotations.read_only_hint is True
    assert _result(behavior)["key"] == "agent"
    planned = _result(plan)
    assert "refund-helper" in json.dumps(planned)
    opened = _result(proposed)
    assert opened["outcome"] == "change_request_opened"
    request = opened["change_request"]
    assert (request["state"], request["object_key"], request["author"]) == ("open", "refund", "bot")
    assert approve.is_error
    assert "approve_change_request" in approve.content[0].text
    assert bad_input.is_error
    assert "risk" in bad_input.content[0].text
    assert _result(killed)
    # the kill applied at once, in every environment
    flag = world.admin.http.get(f"/api/v1/projects/{PROJECT}/flags/agent").json()
    assert flag["environments"]["production"]["killed"] is True, flag
    # the token the agent holds cannot approve the request through the API either
    assert_token_cannot_approve(world.server.url, world.bot_token, world.admin.http, request["id"])
    # the writes are audited with the agent's own identity and the mcp source
    entries = assert_audited_as_agent(world.admin.http, PROJECT, "bot")
    assert {e["source"] for e in entries} == {"mcp"}
    # one log line per tool call in the server's log: the token's prefix, never the token
    log = world.server.log_text()
    calls = [json.loads(line) for line in log.splitlines() if '"mcp.tool_call"' in line]
    mine = [c for c in calls if c["token"] == world.bot_token.split("_")[1]]
    assert [(c["tool"], c["outcome"]) for c in mine][-5:] == [
        ("get_behavior", "ok"),
        ("plan_contract", "ok"),
        ("propose_tool", "proposed"),
        ("propose_tool", "error"),
        ("kill_behavior", "ok"),
    ]
    assert world.bot_token not in log
    killed_entry = next(e for e in entries if e["action"] == "flag:killed")
    assert killed_entry["request_id"] == mine[-1]["request_id"]


def test_a_contract_that_expands_a_high_risk_behavior_stays_a_change_request(
    world: World,
) -> None:
    _, (submitted,) = _session(
        world,
        world.bot_token,
        ("submit_contract", {"project": PROJECT, "source": CONTRACT, "reason": "new helper"}),
    )
    answer = _result(submitted)
    assert answer["outcome"] == "change_request_opened", answer
    pending = answer["change_request"]["pending"]
    assert len(pending) == 1, answer
    request = world.admin.http.get(f"/api/v1/change-requests/{pending[0]}").json()
    assert (request["state"], request["author"]) == ("open", "bot")
    flag = world.admin.http.get(f"/api/v1/projects/{PROJECT}/flags/refund-helper").json()
    assert flag["environments"]["production"]["on"] is False, flag


def test_a_token_limited_to_one_project_reads_only_that_project(world: World) -> None:
    _, (own, other) = _session(
        world,
        world.scoped_token,
        ("list_behaviors", {"project": PROJECT}),
        ("list_behaviors", {"project": OTHER}),
    )
    assert "agent" in {f["key"] for f in _result(own)["items"]}
    assert other.is_error
    assert "stock-agent" not in other.content[0].text


def _post(world: World, headers: dict[str, str]) -> httpx.Response:
    sent = {"Accept": "application/json, text/event-stream", **headers}
    return httpx.post(f"{world.server.url}/mcp", json=INITIALIZE, headers=sent, timeout=10.0)


@pytest.mark.parametrize(
    ("who", "status", "words"),
    [
        ("nobody", 401, "Authorization: Bearer <automation token>"),
        ("wrong", 401, "invalid API token"),
        ("revoked", 401, "revoked"),
        ("basic", 401, "Authorization: Bearer <automation token>"),
        ("person", 403, "automation tokens only"),
        ("admin", 403, "automation tokens only"),
    ],
)
def test_only_a_live_automation_token_reaches_the_tools(
    world: World, who: str, status: int, words: str
) -> None:
    tokens = {
        "wrong": "lgt_abcdefgh_" + "x" * 40,
        "revoked": world.revoked_token,
        "person": world.person_token,
        "admin": ADMIN_TOKEN,
    }
    if who == "nobody":
        headers = {}
    elif who == "basic":
        headers = {"Authorization": "Basic Ym90OnNlY3JldA=="}
    else:
        headers = {"Authorization": f"Bearer {tokens[who]}"}
    refused = _post(world, headers)
    assert refused.status_code == status, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert words in refused.json()["detail"]
    if status == 401:
        assert refused.headers["www-authenticate"].startswith("Bearer")


def test_the_automation_token_initializes_over_plain_http(world: World) -> None:
    answer = _post(world, {"Authorization": f"Bearer {world.bot_token}"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["result"]["serverInfo"]["name"] == "lockgate"


@pytest.mark.parametrize(("enabled", "status"), [(True, 401), (False, 404)])
def test_the_endpoint_can_be_turned_off(
    sqlite_settings: Settings, enabled: bool, status: int
) -> None:
    app = create_app(sqlite_settings.with_overrides(mcp_http=enabled))
    with TestClient(app) as client:
        answer = client.post("/mcp", json=INITIALIZE)
    assert answer.status_code == status, answer.text


def test_only_post_is_served_there_is_no_stream_to_hold_open(sqlite_settings: Settings) -> None:
    with TestClient(create_app(sqlite_settings)) as client:
        answers = [client.request(method, "/mcp") for method in ("GET", "DELETE")]
    assert [a.status_code for a in answers] == [405, 405]
    assert {a.headers["content-type"] for a in answers} == {"application/problem+json"}


async def _side_by_side(world: World) -> list[Any]:
    def propose(tool: str) -> list[tuple[str, dict[str, Any]]]:
        args = {"project": PROJECT, "tool": tool, "risk": "read", "reason": "side by side"}
        return [("propose_tool", args)]

    return list(
        await asyncio.gather(
            _in_session(world, world.bot_token, propose("lookup-a")),
            _in_session(world, world.scoped_token, propose("lookup-b")),
        )
    )


def test_agents_calling_at_once_each_act_as_themselves(world: World) -> None:
    (_, (first,)), (_, (second,)) = asyncio.run(_side_by_side(world))
    authors = {
        _result(answer)["change_request"]["object_key"]: _result(answer)["change_request"]["author"]
        for answer in (first, second)
    }
    assert authors == {"lookup-a": "bot", "lookup-b": "scoped"}


def test_the_openapi_document_describes_the_endpoint_as_it_answers(world: World) -> None:
    document = httpx.get(f"{world.server.url}/openapi.json", timeout=10.0).json()
    post = document["paths"]["/mcp"]["post"]
    documented = set(post["responses"])
    assert documented >= {"200", "202", "400", "401", "403", "405", "406", "413", "415"}
    assert [p["name"] for p in post["parameters"] if p["required"]] == ["Authorization", "Accept"]
    bearer = {"Authorization": f"Bearer {world.bot_token}"}
    url = f"{world.server.url}/mcp"
    answers = {
        "200": _post(world, bearer),
        "202": httpx.post(
            url,
            json={"jsonrpc": "2.0", "method": "notifications/initialized"},
            headers={"Accept": "application/json", **bearer},
            timeout=10.0,
        ),
        "400": httpx.post(
            url,
            content=b"{not json",
            headers={"Accept": "application/json", "Content-Type": "application/json", **bearer},
            timeout=10.0,
        ),
        "406": _post(world, {"Accept": "text/plain", **bearer}),
        "415": httpx.post(
            url,
            content=json.dumps(INITIALIZE),
            headers={"Accept": "application/json", "Content-Type": "text/plain", **bearer},
            timeout=10.0,
        ),
        "401": _post(world, {}),
        "403": _post(world, {"Authorization": f"Bearer {world.person_token}"}),
        "405": httpx.get(url, headers=bearer, timeout=10.0),
    }
    # Any other method is 405 whoever asks: the credential check is for POST.
    for method in ("GET", "DELETE", "PUT", "TRACE"):
        for headers in ({}, bearer, {"Authorization": f"Bearer {world.person_token}"}):
            assert httpx.request(method, url, headers=headers, timeout=10.0).status_code == 405
    for status, answer in answers.items():
        assert str(answer.status_code) == status, (status, answer.text)
        assert status in documented
        content = post["responses"][status].get("content", {})
        if answer.content:
            media = answer.headers["content-type"].split(";")[0]
            assert media in content, (status, media)
    for status, header in (("406", "Accept"), ("415", "Content-Type")):
        assert answers[status].headers["content-type"] == "application/problem+json"
        assert answers[status].json()["errors"][0]["field"] == header


def test_the_document_has_no_endpoint_when_it_is_turned_off(sqlite_settings: Settings) -> None:
    with TestClient(create_app(sqlite_settings.with_overrides(mcp_http=False))) as client:
        paths = client.get("/openapi.json").json()["paths"]
    assert "/mcp" not in paths
