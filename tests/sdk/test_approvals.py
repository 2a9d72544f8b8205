"""The SDK's approval requests against a scripted server: retries, refusals, redaction.

A small ``http.server`` plays the server's side of ``/sdk/v1/approvals``: tests script
its answers (a status per call, or a request that stays pending) and read every request
it got. The real server is in test_approvals_live.py.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from lockgate.sdk import ApprovalStatus, Client
from lockgate.sdk.approvals import request_body

Json = dict[str, Any]


class Script:
    def __init__(self) -> None:
        self.posts: list[Json] = []
        self.gets: list[str] = []
        self.post_statuses: list[int] = []  # answered in turn before the 201
        self.state = "pending"
        self.lock = threading.Lock()

    def body(self) -> Json:
        return {
            "id": 7,
            "state": self.state,
            "reason": "verified" if self.state == "approved" else "",
            "approvals": [{"by": "ava", "comment": "verified", "at": "t"}]
            if self.state == "approved"
            else [],
            "denials": [],
            "decided_at": None,
        }


def handler(script: Script) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            return None

        def _send(self, status: int, body: Json) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            sent = json.loads(self.rfile.read(length))
            with script.lock:
                script.posts.append(sent)
                status = script.post_statuses.pop(0) if script.post_statuses else 201
            if status == 201:
                self._send(201, script.body())
            else:
                self._send(status, {"detail": f"scripted {status}", "status": status})

        def do_GET(self) -> None:
            with script.lock:
                script.gets.append(self.path)
            self._send(200, script.body())

    return Handler


@pytest.fixture
def scripted() -> Iterator[tuple[Script, str]]:
    script = Script()
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler(script))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield script, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def sdk(url: str) -> Client:
    return Client(
        "lgs_key", url, events=False, decisions=False, start=False, private_attributes=["email"]
    )


def test_a_failed_request_is_retried_with_the_same_idempotency_key(
    scripted: tuple[Script, str],
) -> None:
    script, url = scripted
    script.post_statuses = [503, 502]
    script.state = "approved"
    with sdk(url) as client:
        decision = client.request_approval("b", "refund", {"key": "u"}, "x", timeout=10)
    assert decision.approved
    assert decision.decided_by == ("ava",)
    assert len(script.posts) == 3
    assert len({p["idempotency_key"] for p in script.posts}) == 1


def test_a_refusal_is_an_error_decision_with_the_server_detail(
    scripted: tuple[Script, str],
) -> None:
    script, url = scripted
    script.post_statuses = [422]
    with sdk(url) as client:
        decision = client.request_approval("b", "refund", {"key": "u"}, "x", timeout=10)
    assert decision.status is ApprovalStatus.ERROR
    assert decision.reason == "HTTP 422: scripted 422"
    assert len(script.posts) == 1  # not retried


def test_a_rejected_key_is_an_error_decision(scripted: tuple[Script, str]) -> None:
    script, url = scripted
    script.post_statuses = [401]
    with sdk(url) as client:
        decision = client.request_approval("b", "refund", {"key": "u"}, "x", timeout=10)
    assert decision.status is ApprovalStatus.ERROR
    assert "refused the SDK key" in decision.reason


def test_private_attributes_never_leave_the_process(scripted: tuple[Script, str]) -> None:
    script, url = scripted
    context = {"key": "u", "email": "ann@example.com", "phone": "+49 1"}
    with sdk(url) as client:
        handle = client.start_approval(
            "b", "refund", context, "x", timeout=10, private_attributes=["phone"]
        )
    sent = script.posts[0]
    assert sent["context"] == {"key": "u"}
    assert sent["private_attributes"] == ["email", "phone"]
    assert "ann@example.com" not in json.dumps(script.posts)
    assert handle.id == 7
    assert handle.decision is None


def test_a_server_that_never_decides_times_out_here_too(scripted: tuple[Script, str]) -> None:
    script, url = scripted  # the scripted server keeps it pending past its deadline
    with sdk(url) as client:
        handle = client.start_approval("b", "refund", {"key": "u"}, "x", timeout=0.5)
        decision = handle.wait()
    assert decision.status is ApprovalStatus.TIMED_OUT
    assert not decision
    assert any("wait=" in path for path in script.gets)  # it long-polled, not tight polling
    assert len(script.gets) < 20


def test_request_body_checks_the_timeout() -> None:
    with pytest.raises(ValueError, match="timeout"):
        request_body("b", "a", {}, "s", timeout=0, idempotency_key=None, private_attributes=())
    body = request_body("b", "a", {}, "s", timeout=0.2, idempotency_key="k", private_attributes=())
    assert body["timeout_seconds"] == 1
    assert body["idempotency_key"] == "k"
