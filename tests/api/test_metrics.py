"""``/metrics`` on a real app, on SQLite and PostgreSQL, read with Prometheus's own parser."""

from __future__ import annotations

import time
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from lockgate.api.app import create_app
from lockgate.control.base import Services
from lockgate.control.jobs import BackgroundJobs, Job
from lockgate.settings import Settings
from tests.api.helpers import bearer

Samples = dict[str, list[tuple[dict[str, str], float]]]


def scrape(http: TestClient, **headers: str) -> Samples:
    r = http.get("/metrics", headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=")
    samples: Samples = {}
    for family in text_string_to_metric_families(r.text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    found = [
        v for got, v in samples.get(name, []) if all(got.get(k) == w for k, w in labels.items())
    ]
    assert len(found) == 1, (name, labels, samples.get(name))
    return found[0]


def world(client: TestClient) -> dict[str, Any]:
    assert client.post("/api/v1/projects", json={"key": "shop"}).status_code == 201
    body = {"key": "production", "protected": True}
    assert client.post("/api/v1/projects/shop/environments", json=body).status_code == 201
    flag = {"key": "checkout", "kind": "boolean", "risk_tier": "high", "reason": "generated"}
    assert client.post("/api/v1/projects/shop/flags", json=flag).status_code == 201
    r = client.post(
        "/api/v1/projects/shop/environments/production/sdk-keys",
        json={"kind": "server", "name": "web"},
    )
    assert r.status_code == 201, r.text
    return {"sdk": bearer(r.json()["key"])}


def test_requests_are_counted_by_route_template_and_status(client: TestClient) -> None:
    keys = world(client)
    for _ in range(3):
        assert client.get("/api/v1/projects/shop").status_code == 200
    assert client.get("/api/v1/projects/nowhere").status_code == 404
    assert client.get("/no/such/path").status_code == 404
    first = client.get("/sdk/v1/snapshot", headers=keys["sdk"])  # through the application
    assert first.status_code == 200
    etag = first.headers["etag"]
    for _ in range(4):  # answered by the fast path now that the key is cached
        r = client.get("/sdk/v1/snapshot", headers=keys["sdk"] | {"If-None-Match": etag})
        assert r.status_code == 304

    samples = scrape(client)
    total = "lockgate_http_requests_total"
    project = "/api/v1/projects/{project}"
    assert value(samples, total, method="GET", route=project, status="200") == 3
    assert value(samples, total, method="GET", route=project, status="404") == 1
    assert value(samples, total, method="GET", route="unmatched", status="404") == 1
    assert value(samples, total, method="GET", route="/sdk/v1/snapshot", status="304") == 4
    routes = {labels["route"] for labels, _ in samples[total]}
    assert not any("shop" in route or "nowhere" in route for route in routes)  # templates only
    count = "lockgate_http_request_duration_seconds_count"
    assert value(samples, count, method="GET", route=project) == 4
    assert value(samples, "lockgate_sdk_streams_open") == 0


def test_open_change_requests_per_project(client: TestClient) -> None:
    world(client)
    r = client.patch(
        "/api/v1/projects/shop/flags/checkout/environments/production",
        json={"on": True, "default": {"variation": "on"}, "reason": "first exposure"},
        headers={"If-Match": '"1"'},
    )
    assert r.status_code == 202, r.text  # a high-risk expansion in production waits
    samples = scrape(client)
    assert value(samples, "lockgate_change_requests_open", project="shop") == 1


def test_a_change_is_timed_until_every_stream_has_it(client: TestClient) -> None:
    keys = world(client)
    assert client.get("/sdk/v1/snapshot", headers=keys["sdk"]).status_code == 200  # held now
    r = client.patch(
        "/api/v1/projects/shop/flags/checkout/environments/production",
        json={"on": True, "reason": "a reduction applies at once"},
        headers={"If-Match": '"1"'},
    )
    assert r.status_code == 200, r.text
    deadline = time.monotonic() + 10
    while True:
        samples = scrape(client)
        if value(samples, "lockgate_change_propagation_seconds_count") >= 1:
            break
        assert time.monotonic() < deadline, "the change was never fanned out"
        time.sleep(0.05)
    assert value(samples, "lockgate_change_propagation_seconds_sum") < 10


def test_background_job_runs_are_counted(app: FastAPI, services: Services) -> None:
    def broken() -> int:
        raise RuntimeError("the job's bug")

    metrics = app.state.metrics
    jobs = BackgroundJobs(
        services, [Job("fine", lambda: 2), Job("broken", broken)], observe=metrics.observe_job
    )
    assert jobs.run_once() == {"fine": 2, "broken": -1}
    with TestClient(app) as http:
        samples = scrape(http)
    runs = "lockgate_background_job_runs_total"
    assert value(samples, runs, job="fine", outcome="ok") == 1
    assert value(samples, runs, job="broken", outcome="failed") == 1
    assert value(samples, "lockgate_background_job_duration_seconds_count", job="fine") == 1


def test_a_metrics_token_is_required_when_set(settings: Settings, services: Services) -> None:
    app = create_app(settings.with_overrides(metrics_token="s3cret-scrape"), services)
    with TestClient(app) as http:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret-scrape"}):
            r = http.get("/metrics", headers=headers)
            assert r.status_code == 401
            assert r.headers["content-type"].startswith("application/problem+json")
            assert r.headers["www-authenticate"] == "Bearer"
        assert "lockgate_http_requests_total" in scrape(http, Authorization="Bearer s3cret-scrape")


def test_guardrail_states_and_the_webhook_backlog(client: TestClient, services: Services) -> None:
    import dataclasses

    from sqlalchemy import update

    from lockgate.control.base import system_caller
    from lockgate.control.evidence import webhooks
    from lockgate.store.tables import webhook_deliveries

    world(client)
    services.webhooks = dataclasses.replace(services.webhooks, allow_private_targets=True)
    webhooks.create_webhook(
        services, system_caller("test-admin"), "shop",
        {"key": "ops", "url": "http://127.0.0.1:9/hook", "event_types": ["*"]},
    )  # fmt: skip
    guardrail = {"metric": "error", "min_sample": 1000, "action": "pause", "reason": "watch"}
    path = "/api/v1/projects/shop/flags/checkout/environments/production/guardrails/errors"
    r = client.put(path, json=guardrail, headers={"X-Lockgate-Reason": "watch errors"})
    assert r.status_code == 200, r.text
    for version, tag in ((1, "a"), (2, "b")):  # two audited changes: two events
        r = client.patch(
            "/api/v1/projects/shop/flags/checkout",
            json={"tags": [tag], "reason": "label"},
            headers={"If-Match": f'"{version}"'},
        )
        assert r.status_code == 200, r.text
    with services.database.write() as conn:  # one of them given up by the sender
        first = conn.execute(select_first_delivery()).scalar_one()
        conn.execute(
            update(webhook_deliveries)
            .where(webhook_deliveries.c.id == first)
            .values(state="failed")
        )
    samples = scrape(client)
    assert value(samples, "lockgate_guardrails", project="shop", state="no_data") == 1
    pending = value(samples, "lockgate_webhook_deliveries", project="shop", state="pending")
    assert pending >= 1
    assert value(samples, "lockgate_webhook_deliveries", project="shop", state="failed") == 1
    assert value(samples, "lockgate_webhook_backlog_oldest_seconds") >= 0


def select_first_delivery() -> Any:
    from sqlalchemy import func, select

    from lockgate.store.tables import webhook_deliveries

    return select(func.min(webhook_deliveries.c.id))
