"""The one tool catalog both MCP transports serve: names, descriptions, annotations."""

from __future__ import annotations

import asyncio

from mcp.types import Tool

from lockgate.mcp.gateway import Gateway
from lockgate.mcp.tools import TOOL_NAMES, build_server

READS = {
    "list_behaviors",
    "get_behavior",
    "behavior_audit",
    "evaluate_behavior",
    "explain_contract",
    "list_tools",
    "list_change_requests",
    "validate_contract",
    "plan_contract",
}
REDUCTIONS = {"kill_behavior", "exclude_audience", "deny_tool"}


def _tools() -> dict[str, Tool]:
    def no_gateway(ctx: object) -> Gateway:
        raise AssertionError("listing the tools calls no gateway")

    server = build_server(no_gateway)
    return {tool.name: tool for tool in asyncio.run(server.list_tools())}


def test_the_catalog_is_exactly_the_documented_names_and_none_approves() -> None:
    tools = _tools()
    assert sorted(tools) == sorted(TOOL_NAMES)
    assert not [n for n in tools if any(w in n for w in ("approve", "apply", "lift", "restore"))]


def test_descriptions_read_as_one_paragraph_for_a_model() -> None:
    for name, tool in _tools().items():
        text = tool.description or ""
        assert len(text) > 60, name
        assert "\n" not in text, (name, text)
        assert "  " not in text, (name, text)


def test_annotations_tell_reads_from_reductions() -> None:
    for name, tool in _tools().items():
        hints = tool.annotations
        assert hints is not None, name
        assert hints.read_only_hint is (name in READS), name
        assert hints.destructive_hint is (name in REDUCTIONS), name


def test_no_tool_asks_the_model_for_its_context_object() -> None:
    for name, tool in _tools().items():
        assert "ctx" not in tool.input_schema.get("properties", {}), name
