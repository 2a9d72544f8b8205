"""Input hygiene: strict JSON, one NUL rule on both databases, capped text, the document."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from lockgate import strict_json

P = "/api/v1/projects/shop"
CONFIG = f"{P}/flags/agent/environments/production"
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def shop(client: TestClient) -> TestClient:
    assert client.post("/api/v1/projects", json={"key": "shop"}).status_code == 201
    r = client.post(f"{P}/environments", json={"key": "production"})
    assert r.status_code == 201
    assert client.post(f"{P}/flags", json={"key": "agent", "kind": "boolean"}).status_code == 201
    return client


def _fields(response: Any) -> list[str]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return [e["field"] for e in response.json()["errors"]]


# -- strict JSON (the parser alone) -------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        pytest.param('{"a": 1, "a": 2}', "a", "duplicate key", id="top-level"),
        pytest.param(
            '{"rules": [{"id": "r", "clauses": [{"op": "in", "op": "equals"}]}]}',
            "rules[0].clauses[0].op",
            "duplicate key",
            id="nested",
        ),
        pytest.param('{"v": 1e400}', "v", "number is too large", id="float-overflow"),
        pytest.param('{"v": [1, NaN]}', "v[1]", "NaN is not a JSON number", id="nan"),
        pytest.param('{"v": -Infinity}', "v", "-Infinity is not a JSON number", id="infinity"),
        pytest.param('{"v": 9007199254740992}', "v", "integer is outside", id="past-2**53"),
        pytest.param('{"v": 1' + "0" * 5000 + "}", "v", "integer is outside", id="5000-digits"),
        pytest.param('{"v": "a\\u0000b"}', "v", "contains a NUL character", id="nul-in-value"),
        pytest.param('{"a\\u0000": 1}', "body", "a key contains a NUL", id="nul-in-key"),
    ],
)
def test_strict_json_refuses_naming_the_field(text: str, field: str, message: str) -> None:
    with pytest.raises(strict_json.StrictJsonError) as caught:
        strict_json.loads(text)
    assert caught.value.field == field
    assert caught.value.message.startswith(message)


def test_strict_json_reads_ordinary_json_as_json_does() -> None:
    text = '{"a": [1, 2.5, -9007199254740991, true, null, "x"], "b": {"c": {}}, "d": []}'
    assert strict_json.loads(text) == json.loads(text)


# -- through the API, on SQLite and PostgreSQL ----------------------------------------------


def test_duplicate_keys_are_refused_and_nothing_is_stored(shop: TestClient) -> None:
    body = '{"key": "twice", "kind": "boolean", "kind": "string"}'
    assert _fields(shop.post(f"{P}/flags", content=body, headers=JSON)) == ["kind"]
    rules = (
        '{"rules": [{"id": "r", "clauses": [{"attribute": "a", "op": "in", "values": ["x"],'
        ' "values": ["y"]}], "serve": {"variation": "on"}}]}'
    )
    r = shop.patch(CONFIG, content=rules, headers=JSON | {"If-Match": '"1"'})
    assert _fields(r) == ["rules[0].clauses[0].values"]
    assert shop.get(f"{P}/flags/twice").status_code == 404
    assert shop.get(f"{P}/flags/agent").json()["environments"]["production"]["version"] == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"key": "n", "kind": "boolean", "name": "a\x00b"}, "name", id="name"),
        pytest.param({"key": "n", "kind": "boolean", "tags": ["ok", "t\x00"]}, "tags[1]", id="tag"),
        pytest.param(
            {"key": "n", "kind": "string", "variations": [{"key": "a", "value": "\x00"}]},
            "variations[0].value",
            id="value",
        ),
    ],
)
def test_nul_characters_are_refused_on_both_databases(
    shop: TestClient, body: dict[str, Any], field: str
) -> None:
    assert _fields(shop.post(f"{P}/flags", json=body)) == [field]
    assert shop.get(f"{P}/flags/n").status_code == 404


def test_nul_in_a_rule_id_or_the_url_is_refused(shop: TestClient) -> None:
    rule = {"id": "r\x00", "clauses": [], "serve": {"variation": "on"}}
    r = shop.patch(CONFIG, json={"rules": [rule]}, headers={"If-Match": '"1"'})
    assert _fields(r) == ["rules[0].id"]
    assert _fields(shop.get(f"{P}/flags/a%00b")) == ["path"]
    assert _fields(shop.get(f"{P}/flags", params={"tag": "a\x00"})) == ["query"]


def test_tags_and_off_variation_are_capped(shop: TestClient) -> None:
    r = shop.post(f"{P}/flags", json={"key": "n", "kind": "boolean", "tags": ["t" * 65]})
    assert _fields(r) == ["tags[0]"]
    r = shop.patch(f"{P}/flags/agent", json={"tags": ["t" * 64]}, headers={"If-Match": '"1"'})
    assert r.status_code == 200, r.text
    r = shop.patch(CONFIG, json={"off_variation": "v" * 129}, headers={"If-Match": '"1"'})
    assert _fields(r) == ["off_variation"]


def test_a_long_rule_id_is_refused(shop: TestClient) -> None:
    rule = {"id": "r" * 129, "clauses": [], "serve": {"variation": "on"}}
    r = shop.patch(CONFIG, json={"rules": [rule]}, headers={"If-Match": '"1"'})
    assert _fields(r) == ["rules[0].id"]


@pytest.mark.parametrize("backend", ["sqlite"])
def test_the_document_marks_if_match_required_wherever_it_is_enforced(
    client: TestClient,
) -> None:
    document = client.get("/openapi.json").json()
    marked = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                if parameter["name"] == "If-Match":
                    assert parameter["required"] is True, (method, path)
                    marked.append((method, path))
    assert ("patch", "/api/v1/projects/{project}/flags/{flag}/environments/{environment}") in marked
    assert len(marked) >= 8
    # and the server does require it:
    r = client.patch("/api/v1/projects/x", json={"name": "X"})
    assert r.status_code == 428
