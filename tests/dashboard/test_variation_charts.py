"""The behavior page's charts per variation in process, on SQLite and PostgreSQL: the
counts SDKs report and the guardrail history the cycle keeps, as the page embeds them (the
JSON the browser draws and the tables under the charts), and bad parameters named."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from lockgate.control.base import Services
from lockgate.control.guardrails import cycle
from lockgate.control.guardrails import definitions as guard_use
from tests.api.helpers import bearer
from tests.api.identity_helpers import PASSWORD, grant, make_user, use_cheap_hashing
from tests.control.guardrails.helpers import ADMIN, START, Clock, add_summaries, setup

PAGE = "/behaviors/shop/assistant"
ERRORS = {"metric": "error", "min_sample": 1000, "window": "1h", "action": "notify",
          "threshold": 0.1}  # fmt: skip
HOUR = int(START.timestamp())


@pytest.fixture(autouse=True)
def _cheap(monkeypatch: pytest.MonkeyPatch) -> None:
    use_cheap_hashing(monkeypatch)


def _count(variation: str | None, at: str, n: int) -> dict[str, Any]:
    return {"flag": "assistant", "variation": variation, "reason": "FALLTHROUGH", "count": n,
            "start": at, "end": at}  # fmt: skip


@pytest.fixture
def seeded(client: TestClient, services: Services) -> Clock:
    """shop / prod / assistant: counts of two variations over two hours (and one from two
    days ago), a regression guardrail evaluated twice by the cycle, and vic, a viewer."""
    clock = setup(services)
    clock.advance(hours=2)  # now: 14:00; the counts are of 12:xx and 13:xx
    key = client.post(
        "/api/v1/projects/shop/environments/prod/sdk-keys", json={"kind": "server", "name": "a"}
    )
    assert key.status_code == 201, key.text
    counts = [
        _count("off", "2026-12-07T12:00:00.000000Z", 700),
        _count("full", "2026-12-07T12:01:00.000000Z", 300),
        _count("off", "2026-12-07T13:59:00.000000Z", 40),
        _count(None, "2026-12-07T13:30:00.000000Z", 2),
        _count("off", "2026-12-05T12:00:00.000000Z", 5000),  # outside the last 24 h
    ]
    r = client.post(
        "/sdk/v1/events", json={"sdk": {"name": "t", "version": "1"}, "counts": counts},
        headers=bearer(key.json()["key"]),
    )  # fmt: skip
    assert r.status_code == 202, r.text
    guard_use.put_guardrail(services, ADMIN, "shop", "assistant", "prod", "errors", ERRORS)
    add_summaries(services, clock, rows={"full": (4000, 160), "off": (4000, 80)})
    cycle.run_cycle(services)  # 14:00: breached
    clock.advance(minutes=15)
    cycle.run_cycle(services)  # 14:15
    make_user(client, "vic")
    grant(client, "shop", "vic", "viewer")
    return clock


@pytest.fixture
def vic(app: FastAPI, seeded: Clock) -> Iterator[TestClient]:
    with TestClient(app, follow_redirects=False) as http:
        r = http.post("/login", data={"username": "vic", "password": PASSWORD, "next": "/"})
        assert r.status_code == 303, r.text
        yield http


def _embedded(page: str, ident: str) -> dict[str, Any]:
    found = re.search(rf'<script type="application/json" id="{ident}">(.*?)</script>', page, re.S)
    assert found is not None, ident
    document: dict[str, Any] = json.loads(html.unescape(found.group(1)))
    return document


def test_the_page_embeds_evaluations_per_variation_per_hour_in_the_environment(
    vic: TestClient,
) -> None:
    r = vic.get(PAGE)
    assert r.status_code == 200, r.text
    exposure = _embedded(r.text, "variation-exposure-data")
    start = HOUR + 3 * 3600 - 86400  # now 14:15: from 15:00 yesterday to 15:00 today
    assert exposure["times"][0] == start
    assert len(exposure["times"]) == 24
    by_label = {s["label"]: s["values"] for s in exposure["series"]}
    assert list(by_label) == ["off", "full", "(caller's default)"]  # observe: never served
    index = (HOUR - start) // 3600
    assert by_label["off"][index : index + 3] == [700, 40, 0]
    assert by_label["full"][index : index + 2] == [300, 0]
    assert by_label["(caller's default)"][index + 1] == 2
    assert exposure["totals"] == {"off": 740, "full": 300, "(caller's default)": 2}
    assert 'data-testid="variation-environment">prod<' in r.text
    assert "1042 evaluations in the last 24h" in r.text
    assert '<th scope="row">2026-12-07 12:00 UTC</th><td>700</td><td>300</td><td>0</td>' in r.text


def test_the_page_embeds_each_guardrail_per_variation_with_threshold_and_interval(
    vic: TestClient,
) -> None:
    page = vic.get(PAGE).text
    metric = _embedded(page, "variation-metric-1")
    interval = _embedded(page, "variation-interval-1")
    slot = HOUR + 2 * 3600
    assert metric["times"] == [slot, slot + 900]
    assert metric["states"] == ["breached", "breached"]
    labels = [(s["label"], s["kind"]) for s in metric["series"]]
    assert labels == [("off", "line"), ("full", "line"), ("threshold", "limit")]
    assert metric["series"][0]["values"] == pytest.approx([0.02, 0.02])
    assert metric["series"][1]["values"] == pytest.approx([0.04, 0.04])
    assert metric["series"][2]["values"] == pytest.approx([0.022, 0.022])
    estimate, low, high, against = (s["values"] for s in interval["series"])
    assert estimate == pytest.approx([0.018, 0.018])
    assert all(0.0 < lo < e < hi for lo, e, hi in zip(low, estimate, high, strict=True))
    assert against == [0.0, 0.0]
    assert (
        'data-testid="variation-guardrail-errors">State: <strong class="state danger">breached'
        in page
    )
    assert "a regression of more than 10% against control" in page


def test_a_range_of_30_days_has_6_hour_buckets_and_counts_of_two_days_ago(
    vic: TestClient,
) -> None:
    page = vic.get(PAGE, params={"range": "30d", "environment": "prod"}).text
    exposure = _embedded(page, "variation-exposure-data")
    assert len(exposure["times"]) == 120
    assert exposure["times"][1] - exposure["times"][0] == 6 * 3600
    assert exposure["totals"]["off"] == 5740
    assert 'aria-current="true">30d<' in page


@pytest.mark.parametrize(
    ("params", "field"),
    [({"range": "1y"}, "range"), ({"environment": "nope"}, "environment"),
     ({"environment": "x" * 201}, "environment")],
)  # fmt: skip
def test_bad_chart_parameters_are_refused_naming_the_field(
    vic: TestClient, params: dict[str, str], field: str
) -> None:
    r = vic.get(PAGE, params=params)
    assert r.status_code == 422, r.text
    assert field in r.text
    assert "Traceback" not in r.text


def test_the_live_section_is_fetched_alone_with_the_same_charts(vic: TestClient) -> None:
    params = {"environment": "prod", "range": "7d"}
    whole = vic.get(PAGE, params=params).text
    section = vic.get(f"{PAGE}/charts", params=params)
    assert section.status_code == 200, section.text
    part = section.text
    assert "<html" not in part  # the section only, not the page around it
    assert part.count(' id="variation-charts"') == 1
    assert f'hx-get="{PAGE}/charts?environment=prod&amp;range=7d"' in part
    for ident in ("variation-exposure-data", "variation-metric-1", "variation-interval-1"):
        assert _embedded(part, ident) == _embedded(whole, ident)
    refused = vic.get(f"{PAGE}/charts", params={"range": "1y"})
    assert refused.status_code == 422
    assert "range" in refused.text


def test_the_section_is_as_private_as_the_page(
    app: FastAPI, client: TestClient, seeded: Clock
) -> None:
    with TestClient(app, follow_redirects=False) as anonymous:
        assert anonymous.get(f"{PAGE}/charts").status_code in (302, 303)
    make_user(client, "outsider")  # no role in the project
    with TestClient(app, follow_redirects=False) as outsider:
        r = outsider.post(
            "/login", data={"username": "outsider", "password": PASSWORD, "next": "/"}
        )
        assert r.status_code == 303, r.text
        assert outsider.get(f"{PAGE}/charts").status_code == 404
        assert outsider.get(PAGE).status_code == 404
