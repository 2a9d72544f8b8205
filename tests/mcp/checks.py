"""Checks both MCP transports' end-to-end tests make of what an agent's token did."""

from __future__ import annotations

from typing import Any

import httpx


def assert_token_cannot_approve(url: str, token: str, admin: Any, request_id: int) -> None:
    """The token is refused when it approves ``request_id``, which stays open."""
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as bot:
        refused = bot.post(f"/api/v1/change-requests/{request_id}/approve", json={})
    assert refused.status_code == 403
    assert "automation tokens never approve" in refused.text
    still = admin.get(f"/api/v1/change-requests/{request_id}").json()
    assert still["state"] == "open"


def assert_audited_as_agent(admin: Any, project: str, actor: str) -> list[dict[str, Any]]:
    """The agent's writes are in the audit log under its own name; its entries."""
    audit = admin.get("/api/v1/audit", params={"project": project, "limit": 50})
    entries = [e for e in audit.json()["items"] if e["actor_name"] == actor]
    assert {e["action"] for e in entries} >= {"change_request:created", "flag:killed"}
    return entries
