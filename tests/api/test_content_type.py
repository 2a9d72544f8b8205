"""A body sent without a JSON content type gets a hint about the header, not only a 422."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_a_form_encoded_body_is_told_to_send_json(client: TestClient) -> None:
    answer = client.post(
        "/api/v1/projects",
        content=b'{"key": "shop", "name": "Shop"}',
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 422
    problem = answer.json()
    assert problem["detail"].endswith(
        "(the body must be JSON with Content-Type: application/json; "
        "got application/x-www-form-urlencoded)"
    )
    assert problem["errors"] == [
        {
            "field": "body",
            "message": "expected a JSON object; send the body with Content-Type: application/json",
        }
    ]


def test_the_same_body_as_json_is_accepted(client: TestClient) -> None:
    answer = client.post("/api/v1/projects", json={"key": "shop", "name": "Shop"})
    assert answer.status_code == 201
