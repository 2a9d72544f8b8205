"""The gateway between the MCP tools and the management API: results, refusals, log lines."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from mcp.server.mcpserver.exceptions import ToolError

from lockgate.mcp.gateway import ApiFailure, Gateway, Params, Reply, api_path, problem_message


class Answers:
    """A port that answers from a table and remembers each request id it was given."""

    def __init__(self, reply: Reply | ApiFailure) -> None:
        self.reply = reply
        self.request_ids: list[str] = []

    async def send(
        self, method: str, path: str, body: Any, params: Params | None, request_id: str
    ) -> Reply:
        self.request_ids.append(request_id)
        if isinstance(self.reply, ApiFailure):
            raise self.reply
        return self.reply


def _gateway(reply: Reply | ApiFailure) -> tuple[Gateway, Answers, list[dict[str, Any]]]:
    lines: list[dict[str, Any]] = []
    api = Answers(reply)
    return Gateway(api, "abc123", lines.append), api, lines


@pytest.mark.parametrize(
    ("reply", "result", "outcome"),
    [
        (Reply({"key": "agent"}), {"key": "agent"}, "ok"),
        (Reply([1, 2]), {"items": [1, 2]}, "ok"),
        (
            Reply({"id": 7, "state": "open"}, 202),
            {"outcome": "change_request_opened", "change_request": {"id": 7, "state": "open"}},
            "proposed",
        ),
    ],
    ids=["object", "list", "change-request"],
)
def test_an_answer_becomes_the_tool_result_and_one_log_line(
    reply: Reply, result: dict[str, Any], outcome: str
) -> None:
    gateway, api, lines = _gateway(reply)
    assert asyncio.run(gateway.post("kill_behavior", "/api/v1/x", {})) == result
    (line,) = lines
    assert (line["event"], line["tool"], line["token"], line["outcome"]) == (
        "mcp.tool_call",
        "kill_behavior",
        "abc123",
        outcome,
    )
    assert line["request_id"] == api.request_ids[0]
    assert "error" not in line


def test_a_refusal_is_a_tool_error_with_the_api_s_words() -> None:
    gateway, _, lines = _gateway(ApiFailure("invalid request: risk\n  risk: not a class"))
    with pytest.raises(ToolError, match="risk: not a class"):
        asyncio.run(gateway.get("list_tools", "/api/v1/x"))
    assert [(line["outcome"], line["error"][:16]) for line in lines] == [
        ("error", "invalid request:")
    ]


def test_each_call_gets_its_own_request_id() -> None:
    gateway, api, _ = _gateway(Reply({}))
    asyncio.run(gateway.get("a", "/x"))
    asyncio.run(gateway.get("b", "/x"))
    assert len(set(api.request_ids)) == 2


@pytest.mark.parametrize(
    ("problem", "message"),
    [
        (
            {"detail": "invalid request: risk", "errors": [{"field": "risk", "message": "bad"}]},
            "invalid request: risk\n  risk: bad",
        ),
        ({"title": "Not found"}, "Not found"),
        (None, "HTTP 502: Bad Gateway"),
    ],
    ids=["fields", "title-only", "not-json"],
)
def test_problem_messages_name_the_fields(problem: Any, message: str) -> None:
    assert problem_message(502 if problem is None else 422, problem, "Bad Gateway") == message


def test_paths_are_percent_encoded_segment_by_segment() -> None:
    assert api_path("projects", "a/b", "flags", "x y") == "/api/v1/projects/a%2Fb/flags/x%20y"
