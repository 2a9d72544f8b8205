"""``POST /sdk/v1/metrics``: summaries and raw events into minute rows (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from lockgate.api.routes.signals import MAX_ROWS
from lockgate.control.base import Services
from lockgate.store.tables import metric_summaries
from tests.api.helpers import bearer
from tests.delivery.servers import Admin

P, ENV = "shop", "production"


@pytest.fixture
def admin(client: TestClient) -> Admin:
    admin = Admin(client)
    admin.project(P, ENV)
    admin.flag(P, "checkout")
    admin.configure(P, "checkout", ENV, on=True, targets=[{"variation": "on", "values": ["vip"]}])
    return admin


@pytest.fixture
def server_key(admin: Admin) -> str:
    return admin.sdk_key(P, ENV, "server")[0]


def _minute(offset_minutes: int = 0) -> datetime:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    return now + timedelta(minutes=offset_minutes)


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _rows(services: Services) -> dict[tuple[str, str, str, str, int], tuple[Any, ...]]:
    t = metric_summaries.c
    with services.database.read() as conn:
        rows = conn.execute(
            select(
                t.flag,
                t.variation,
                t.metric,
                t.cohort,
                t.bucket,
                t.count,
                t.sum,
                t.sum_sq,
                t.exposures,
                t.resolution,
            )
        ).all()
    return {tuple(r[:5]): tuple(r[5:]) for r in rows}


def _summary(**fields: Any) -> dict[str, Any]:
    row = {
        "behavior": "checkout",
        "variation": "on",
        "metric": "errors",
        "start": _stamp(_minute()),
        "count": 3,
        "sum": 2.0,
        "sum_sq": 2.0,
        "exposures": 0,
    }
    return row | fields


def test_summaries_add_into_minute_rows(
    client: TestClient, server_key: str, services: Services
) -> None:
    minute = _minute()
    body = {
        "summaries": [
            _summary(start=_stamp(minute + timedelta(seconds=30))),
            _summary(
                start=_stamp(minute),
                metric="$exposure",
                count=0,
                sum=0.0,
                sum_sq=0.0,
                exposures=40,
            ),
            _summary(start=_stamp(minute), cohort="acct-1", count=1, sum=0.5, sum_sq=0.25),
        ]
    }
    for _ in range(2):
        r = client.post("/sdk/v1/metrics", json=body, headers=bearer(server_key))
        assert r.status_code == 202, r.text
        assert r.json() == {"summaries": 3, "events": 0, "rows": 3}
    bucket = int(minute.timestamp())
    assert _rows(services) == {
        ("checkout", "on", "errors", "", bucket): (6, 4.0, 4.0, 0, 60),
        ("checkout", "on", "$exposure", "", bucket): (0, 0.0, 0.0, 80, 60),
        ("checkout", "on", "errors", "acct-1", bucket): (2, 1.0, 0.5, 0, 60),
    }


def test_raw_events_are_aggregated_and_attributed(
    client: TestClient, server_key: str, services: Services
) -> None:
    minute = _minute()  # once: the test may straddle a minute boundary
    now = _stamp(minute)
    events = [
        {
            "metric": "latency_ms",
            "behavior": "checkout",
            "variation": "off",
            "value": 3.0,
            "timestamp": now,
        },
        {
            "metric": "latency_ms",
            "behavior": "checkout",
            "variation": "off",
            "value": 4.0,
            "timestamp": now,
        },
        # the variation the behavior serves this context (targeted: on)
        {
            "metric": "latency_ms",
            "behavior": "checkout",
            "context_key": "vip",
            "value": 10.0,
            "timestamp": now,
        },
        {"metric": "$exposure", "behavior": "checkout", "variation": "off", "timestamp": now},
    ]
    r = client.post("/sdk/v1/metrics", json={"events": events}, headers=bearer(server_key))
    assert r.status_code == 202, r.text
    bucket = int(minute.timestamp())
    assert _rows(services) == {
        ("checkout", "off", "latency_ms", "", bucket): (2, 7.0, 25.0, 0, 60),
        ("checkout", "on", "latency_ms", "", bucket): (1, 10.0, 100.0, 0, 60),
        ("checkout", "off", "$exposure", "", bucket): (0, 0.0, 0.0, 1, 60),
    }


BAD: list[tuple[dict[str, Any], str]] = [
    ({"summaries": [_summary(count=-1)]}, "summaries[0].count"),
    ({"summaries": [_summary(sum_sq=-1.0)]}, "summaries[0].sum_sq"),
    ({"summaries": [_summary(behavior="no spaces")]}, "summaries[0].behavior"),
    ({"summaries": [_summary(metric="x" * 129)]}, "summaries[0].metric"),
    ({"summaries": [_summary(start="yesterday")]}, "summaries[0].start"),
    ({"summaries": [_summary(start="2020-01-01T00:00:00Z")]}, "summaries[0].start"),
    ({"summaries": [_summary(start=_stamp(_minute(60)))]}, "summaries[0].start"),
    ({"summaries": [_summary(metric="$exposure")]}, "summaries[0]"),
    ({"summaries": [_summary(count=0)]}, "summaries[0]"),
    ({"summaries": [_summary(unknown=1)]}, "summaries[0].unknown"),
    ({"summaries": [_summary()] * (MAX_ROWS + 1)}, "summaries"),
    (
        {"events": [{"metric": "e", "behavior": "checkout", "timestamp": _stamp(_minute())}]},
        "events[0].variation",
    ),
    (
        {"events": [{"metric": "e", "variation": "on", "timestamp": _stamp(_minute())}]},
        "events[0].behavior",
    ),
    (
        {
            "events": [
                {
                    "metric": "e",
                    "behavior": "checkout",
                    "variation": "on",
                    "value": 1e300,
                    "timestamp": _stamp(_minute()),
                }
            ]
        },
        "events[0].value",
    ),
    (
        {
            "events": [
                {
                    "metric": "e",
                    "behavior": "gone",
                    "context_key": "u",
                    "timestamp": _stamp(_minute()),
                }
            ]
        },
        "events[0].behavior",
    ),
]


@pytest.mark.parametrize(("body", "field"), BAD)
def test_bad_input_is_refused_naming_the_field_and_stores_nothing(
    client: TestClient, server_key: str, services: Services, body: dict[str, Any], field: str
) -> None:
    good = _summary(metric="fine")
    body = {**body, "summaries": [*body.get("summaries", []), good]}
    r = client.post("/sdk/v1/metrics", json=body, headers=bearer(server_key))
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    fields = [p["field"] for p in r.json()["errors"]]
    assert field in fields, fields
    assert _rows(services) == {}


def test_non_finite_numbers_are_refused(
    client: TestClient, server_key: str, services: Services
) -> None:
    text = (
        '{"summaries": [{"behavior": "checkout", "variation": "on", "metric": "m", "start": "'
        + _stamp(_minute())
        + '", "count": 1, "sum": NaN, "sum_sq": 1}]}'
    )
    r = client.post(
        "/sdk/v1/metrics",
        content=text,
        headers={**bearer(server_key), "Content-Type": "application/json"},
    )
    assert r.status_code in (400, 422), r.text
    assert _rows(services) == {}


def test_client_keys_are_refused(client: TestClient, admin: Admin) -> None:
    key = admin.sdk_key(P, ENV, "client")[0]
    r = client.post("/sdk/v1/metrics", json={"summaries": [_summary()]}, headers=bearer(key))
    assert r.status_code in (401, 403), r.text
