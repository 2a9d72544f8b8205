"""Request limits: the JSON depth scan (exact on named cases, equal to a plain byte loop on
any input), and credentials checked before a body is read."""

from __future__ import annotations

import asyncio
import json

import pytest
from fastapi import FastAPI
from hypothesis import given, settings
from hypothesis import strategies as st

from lockgate.api.app import ROUTERS
from lockgate.api.auth_first import Credential, CredentialGate
from lockgate.api.limits import deeper_than, json_depth


def plain_depth(body: bytes) -> int:
    """The obvious byte-by-byte scan the fast one must agree with."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == ord("\\"):
                escaped = True
            elif byte == ord('"'):
                in_string = False
        elif byte == ord('"'):
            in_string = True
        elif byte in b"[{":
            depth += 1
            deepest = max(deepest, depth)
        elif byte in b"]}":
            depth -= 1
    return deepest


@pytest.mark.parametrize(
    ("body", "depth"),
    [
        pytest.param(b"", 0, id="empty"),
        pytest.param(b"42", 0, id="scalar"),
        pytest.param(b"{}", 1, id="object"),
        pytest.param(b'{"a": [1, {"b": []}]}', 4, id="nested"),
        pytest.param(b"[][][]", 1, id="siblings"),
        pytest.param(b'["[[[[", "{{{{"]', 1, id="brackets-in-strings"),
        pytest.param(rb'["\"[[[", 1]', 1, id="escaped-quote"),
        pytest.param(rb'["\\", [[1]]]', 3, id="escaped-backslash-ends-string"),
        pytest.param(b'[1, "[[[[', 1, id="unterminated-string"),
        pytest.param(b"]]]][[", 0, id="closing-first"),
        pytest.param(b"[" * 100 + b"]" * 100, 100, id="deep"),
    ],
)
def test_json_depth(body: bytes, depth: int) -> None:
    assert json_depth(body) == depth
    assert plain_depth(body) == depth


JSONISH = st.lists(
    st.sampled_from([b"[", b"]", b"{", b"}", b'"', b"\\", b",", b"1", b"a", b":", b" "]),
    max_size=200,
).map(b"".join)


@settings(max_examples=500)
@given(JSONISH)
def test_json_depth_equals_the_plain_scan_on_any_bytes(body: bytes) -> None:
    assert json_depth(body) == plain_depth(body)


nested_values = st.recursive(
    st.none() | st.integers() | st.text(alphabet='[]{}"\\ab', max_size=8),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(alphabet='[]{}"\\ab', max_size=4), children, max_size=4)
    ),
    max_leaves=30,
)


@given(nested_values)
def test_json_depth_of_real_json(value: object) -> None:
    body = json.dumps(value).encode()
    assert json_depth(body) == plain_depth(body)


@pytest.mark.parametrize(
    ("body", "limit", "expected"),
    [
        pytest.param(b"[" * 32 + b"]" * 32, 32, False, id="at-the-limit"),
        pytest.param(b"[" * 33 + b"]" * 33, 32, True, id="over-the-limit"),
        pytest.param(b"[" + b"[]," * 100 + b"[]]", 32, False, id="many-shallow-brackets"),
        pytest.param(b'["' + b"[" * 100 + b'"]', 32, False, id="brackets-in-a-string"),
    ],
)
def test_deeper_than(body: bytes, limit: int, expected: bool) -> None:
    assert deeper_than(body, limit) is expected
    assert (plain_depth(body) > limit) is expected


# -- credentials are checked before the body is read ---------------------------------------


class Recorder:
    """An ASGI request with a ~1 MiB body; counts the body messages the app asked for."""

    def __init__(self, path: str, headers: list[tuple[bytes, bytes]]) -> None:
        self.body = json.dumps({"key": "p", "values": list(range(120_000))}).encode()
        self.pieces = [self.body[i : i + 65536] for i in range(0, len(self.body), 65536)]
        self.reads = 0
        self.status = 0
        self.response = b""
        self.scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(self.body)).encode()),
                *headers,
            ],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8080),
        }

    async def receive(self) -> dict[str, object]:
        if self.reads >= len(self.pieces):
            return {"type": "http.disconnect"}
        self.reads += 1
        more = self.reads < len(self.pieces)
        return {"type": "http.request", "body": self.pieces[self.reads - 1], "more_body": more}

    async def send(self, message: dict[str, object]) -> None:
        if message["type"] == "http.response.start":
            self.status = int(message["status"])  # type: ignore[call-overload]
        elif message["type"] == "http.response.body":
            self.response += message.get("body", b"")  # type: ignore[operator]

    def run(self, app: FastAPI) -> Recorder:
        asyncio.run(app(self.scope, self.receive, self.send))  # type: ignore[arg-type]
        return self


@pytest.mark.parametrize(
    ("path", "headers", "code"),
    [
        pytest.param("/api/v1/projects", [], "unauthenticated", id="no-credentials"),
        pytest.param(
            "/api/v1/projects",
            [(b"authorization", b"Bearer lga_not_a_token")],
            "unauthenticated",
            id="invalid-token",
        ),
        pytest.param(
            "/api/v1/projects",
            [(b"authorization", b"Basic dTpw")],
            "unauthenticated",
            id="wrong-scheme",
        ),
        pytest.param("/sdk/v1/events", [], "unauthenticated", id="sdk-no-key"),
        pytest.param(
            "/sdk/v1/events",
            [(b"authorization", b"Bearer lgs_not_a_key")],
            "unauthenticated",
            id="sdk-invalid-key",
        ),
    ],
)
def test_a_request_without_a_valid_credential_is_refused_unread(
    app: FastAPI, path: str, headers: list[tuple[bytes, bytes]], code: str
) -> None:
    seen = Recorder(path, headers).run(app)
    assert seen.status == 401
    assert json.loads(seen.response)["code"] == code
    assert seen.reads == 0


def test_a_valid_token_reads_and_checks_the_body(app: FastAPI, admin_token: str) -> None:
    headers = [(b"authorization", f"Bearer {admin_token}".encode())]
    seen = Recorder("/api/v1/projects", headers).run(app)
    assert seen.reads == len(seen.pieces)
    assert seen.status == 422  # read and parsed: well-formed JSON, but not a project
    assert json.loads(seen.response)["errors"][0]["field"] == "values"


def test_a_route_without_credentials_reads_the_body(app: FastAPI) -> None:
    seen = Recorder("/api/v1/auth/login", []).run(app)
    assert seen.reads == len(seen.pieces)
    assert seen.status == 422


def test_credential_table() -> None:
    gate = CredentialGate(route for router in ROUTERS for route in router.routes)
    cases = {
        ("POST", "/api/v1/projects"): Credential.CALLER,
        ("POST", "/api/v1/auth/login"): None,
        ("POST", "/sdk/v1/events"): Credential.SDK_KEY,
        ("POST", "/ofrep/v1/evaluate/flags"): Credential.SDK_KEY,
        ("POST", "/no/such/route"): None,
    }
    for (method, path), expected in cases.items():
        scope = {"type": "http", "method": method, "path": path, "root_path": ""}
        assert gate.credential_needed(scope) is expected, (method, path)
