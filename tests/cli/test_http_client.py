"""The CLI's HTTP client: what it sends, and how every failure becomes one exit code.

Answers a real server cannot be made to give (a proxy's HTML 502, a non-JSON 200) come
from ``httpx.MockTransport``; a timeout comes from a real socket that never answers.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator, Mapping

import httpx
import pytest

from lockgate.cli.errors import EXIT_CODES, CliError, exit_code_for_status
from lockgate.cli.http import ApiClient, api_path

PROBLEM = {"content-type": "application/problem+json"}


def client(handler: httpx.MockTransport, token: str = "secret-token") -> ApiClient:
    return ApiClient("http://lockgate.test", token, transport=handler)


def failure(status: int, body: str | Mapping[str, object], headers: dict[str, str]) -> CliError:
    content = body if isinstance(body, str) else json.dumps(body)
    transport = httpx.MockTransport(
        lambda _r: httpx.Response(status, text=content, headers=headers)
    )
    with client(transport) as api, pytest.raises(CliError) as raised:
        api.get("/api/v1/projects")
    return raised.value


@pytest.mark.parametrize(
    ("status", "code"),
    [
        pytest.param(401, 5, id="unauthenticated"),
        pytest.param(403, 5, id="forbidden"),
        pytest.param(404, 6, id="not-found"),
        pytest.param(409, 7, id="conflict"),
        pytest.param(412, 7, id="precondition-failed"),
        pytest.param(428, 7, id="precondition-required"),
        pytest.param(422, 3, id="invalid"),
        pytest.param(413, 3, id="too-large"),
        pytest.param(400, 1, id="bad-request"),
        pytest.param(429, 1, id="rate-limited"),
        pytest.param(500, 1, id="server-error"),
        pytest.param(503, 1, id="unavailable"),
    ],
)
def test_http_status_to_exit_code(status: int, code: int) -> None:
    assert exit_code_for_status(status) == code
    assert failure(status, {"detail": "nope", "code": "x"}, PROBLEM).code == code


def test_every_status_maps_to_one_exit_code() -> None:
    statuses = [s for row in EXIT_CODES for s in row.http_statuses]
    assert len(statuses) == len(set(statuses))
    assert len({row.code for row in EXIT_CODES}) == len(EXIT_CODES)


def test_requests_carry_token_source_request_id_and_if_match() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"version": 4}, headers={"ETag": '"4"'})

    with client(httpx.MockTransport(handler)) as api:
        answer = api.patch("/api/v1/x", {"on": True, "reason": "why"}, version=3)
        api.get("/api/v1/x", {"q": "a b", "archived": False, "cursor": None})
    patch, get = seen
    assert patch.headers["Authorization"] == "Bearer secret-token"
    assert patch.headers["X-Lockgate-Source"] == "cli"
    assert patch.headers["If-Match"] == '"3"'
    assert json.loads(patch.content) == {"on": True, "reason": "why"}
    ids = [r.headers["X-Request-ID"] for r in seen]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert ids[0] != ids[1]
    assert str(get.url) == "http://lockgate.test/api/v1/x?q=a+b&archived=false"
    assert "If-Match" not in get.headers
    assert (answer.etag, answer.version) == (4, 4)


def test_no_token_sends_no_authorization_and_hints_at_one() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert "Authorization" not in request.headers
        return httpx.Response(401, json={"detail": "authentication required"}, headers=PROBLEM)

    with client(httpx.MockTransport(handler), token="") as api, pytest.raises(CliError) as raised:
        api.get("/api/v1/projects")
    assert raised.value.message.splitlines() == [
        "authentication required",
        "  (no API token: set LOCKGATE_TOKEN or pass --token)",
    ]


def test_a_problem_prints_its_detail_then_one_line_per_field() -> None:
    problem = {
        "detail": "invalid request: rules[0].clauses[0].op, reason",
        "code": "invalid_input",
        "errors": [
            {"field": "rules[0].clauses[0].op", "message": "unknown operator 'endz'"},
            {"field": "reason", "message": "required"},
        ],
    }
    error = failure(422, problem, PROBLEM)
    assert (error.code, error.message.splitlines()) == (
        3,
        [
            "invalid request: rules[0].clauses[0].op, reason",
            "  rules[0].clauses[0].op: unknown operator 'endz'",
            "  reason: required",
        ],
    )


def test_an_answer_that_is_not_a_problem_names_status_and_request_id() -> None:
    error = failure(502, "<html>Bad Gateway</html>\n<body/>", {"content-type": "text/html"})
    assert error.code == 1
    assert re.fullmatch(
        r"HTTP 502 from http://lockgate\.test: <html>Bad Gateway</html> "
        r"\(request id [0-9a-f]{32}\)",
        error.message,
    )


def test_a_success_that_is_not_json_is_a_failure() -> None:
    transport = httpx.MockTransport(lambda _r: httpx.Response(200, text="<html/>"))
    with client(transport) as api, pytest.raises(CliError) as raised:
        api.get("/api/v1/projects")
    assert (raised.value.code, raised.value.message) == (
        1,
        "unexpected answer from http://lockgate.test/api/v1/projects: not JSON",
    )


def test_no_content_is_none() -> None:
    transport = httpx.MockTransport(lambda _r: httpx.Response(204))
    with client(transport) as api:
        answer = api.delete("/api/v1/x", reason="done")
    assert (answer.body, answer.etag) == (None, None)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (into the backlog) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


def test_a_server_that_never_answers_times_out_with_exit_8(silent_port: int) -> None:
    url = f"http://127.0.0.1:{silent_port}"
    with ApiClient(url, "t", timeout=0.2) as api, pytest.raises(CliError) as raised:
        api.get("/api/v1/projects")
    assert (raised.value.code, raised.value.message) == (
        8,
        f"cannot reach lockgate at {url}: no answer in time (timeout) (set LOCKGATE_URL or --url)",
    )


@pytest.mark.parametrize("url", ["ftp://lockgate.test", "lockgate.test:8080"])
def test_an_unusable_url_is_a_usage_error(url: str) -> None:
    with ApiClient(url, "t") as api, pytest.raises(CliError) as raised:
        api.get("/api/v1/projects")
    assert raised.value.code == 2
    assert raised.value.message.startswith(f"invalid lockgate URL {url!r}: ")


def test_api_path_encodes_each_segment() -> None:
    assert api_path("projects", "a/b", "members", "ann@corp") == (
        "/api/v1/projects/a%2Fb/members/ann%40corp"
    )
