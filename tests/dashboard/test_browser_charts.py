"""The behavior page's charts per variation in a real headless Chromium against a real
``lockgate serve`` whose guardrail cycle runs every second: evaluations counted by an SDK
key and a guardrail evaluated by the cycle are drawn (canvas, legend naming the variations,
the threshold), follow the live feed without a reload, and pass axe-core."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from tests.dashboard.browser import World, login, screenshot
from tests.dashboard.test_browser import AXE, live, until
from tests.delivery.servers import LockgateServer, lockgate_server

GUARDRAIL = {"metric": "error", "min_sample": 1000, "window": "1h", "action": "notify",
             "threshold": 0.1}  # fmt: skip


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LockgateServer]:
    data = Path(tmp_path_factory.mktemp("dashboard-charts")) / "data"
    with lockgate_server(data, extra=("--guardrail-cycle-seconds", "1")) as running:
        yield running


def _at(minutes_ago: int) -> str:
    moment = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    return moment.strftime("%Y-%m-%dT%H:%M:00.000000Z")


def _count(variation: str, minutes_ago: int, n: int) -> dict[str, Any]:
    at = _at(minutes_ago)
    return {"flag": "checkout", "variation": variation, "reason": "SPLIT", "count": n,
            "start": at, "end": at}  # fmt: skip


def _seed(world: World) -> str:
    """checkout in staging: 50/50, counted by an SDK, a guardrail the cycle evaluates."""
    world.flag("checkout")
    split = [{"variation": "on", "weight": 50_000}, {"variation": "off", "weight": 50_000}]
    world.configure("checkout", "staging", on=True, default={"split": split})
    key = world.sdk_key("staging")
    auth = {"Authorization": f"Bearer {key}"}
    counts = [_count("on", 90, 400), _count("off", 90, 420), _count("on", 5, 100)]
    body = {"sdk": {"name": "test", "version": "1"}, "counts": counts}
    world.ok(world.http.post("/sdk/v1/events", json=body, headers=auth), 202)
    summaries = [
        {"behavior": "checkout", "variation": v, "metric": m, "start": _at(2), **fields}
        for v, events in (("on", 160), ("off", 80))
        for m, fields in (("$exposure", {"exposures": 4000}),
                          ("error", {"count": events, "sum": events, "sum_sq": events}))
    ]  # fmt: skip
    world.ok(world.http.post("/sdk/v1/metrics", json={"summaries": summaries}, headers=auth), 202)
    path = f"/api/v1/projects/{world.project}/flags/checkout/environments/staging/guardrails"
    world.ok(world.http.put(f"{path}/errors", json=GUARDRAIL))
    until(lambda: world.ok(world.http.get(f"{path}/errors"))["state"] == "breached", 30)
    return key


def test_the_charts_per_variation_render_update_live_and_pass_axe(
    browser: Browser, world: World
) -> None:
    key = _seed(world)
    page = login(browser, world.url, "vic")
    page.goto(f"/behaviors/{world.project}/checkout?environment=staging&range=24h")
    live(page)
    section = page.get_by_test_id("variation-charts")
    expect(page.get_by_test_id("variation-environment")).to_have_text("staging")
    expect(section.locator("canvas")).to_have_count(3)  # evaluations, metric, interval
    legends = section.locator(".u-legend")
    expect(legends.nth(0)).to_contain_text("on")
    expect(legends.nth(0)).to_contain_text("off")
    expect(legends.nth(1)).to_contain_text("threshold")
    expect(legends.nth(2)).to_contain_text("interval low")
    expect(page.get_by_test_id("variation-totals")).to_contain_text("920 evaluations")
    expect(page.get_by_test_id("variation-guardrail-errors")).to_contain_text("breached")
    screenshot(page, "behavior-variations")

    # Live: more counts, then any audited change: the section fetches itself again.
    body = {"counts": [_count("off", 1, 80)]}
    auth = {"Authorization": f"Bearer {key}"}
    world.ok(world.http.post("/sdk/v1/events", json=body, headers=auth), 202)
    page.evaluate("window.__kept = true")  # gone if the page reloaded
    world.configure("checkout", "staging", on=True, default={"variation": "on"})
    expect(page.get_by_test_id("variation-totals")).to_contain_text("1000 evaluations")
    expect(section.locator("canvas")).to_have_count(3)
    assert page.evaluate("window.__kept === true")
    page.context.close()

    context = browser.new_context(base_url=world.url, bypass_csp=True)  # to inject axe
    checked = context.new_page()
    checked.goto("/login")
    checked.get_by_label("Username").fill("vic")
    checked.get_by_label("Password").fill("correct-horse-battery-staple")
    checked.get_by_role("button", name="Log in").click()
    checked.wait_for_url(lambda url: "/login" not in url)
    checked.goto(f"/behaviors/{world.project}/checkout?environment=staging&range=7d")
    expect(checked.get_by_test_id("variation-charts").locator("canvas")).to_have_count(3)
    checked.add_script_tag(content=AXE)
    result = checked.evaluate("axe.run(document)")
    serious = [
        f"{v['id']} ({v['impact']}): {v['help']} — {len(v['nodes'])} node(s)"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    screenshot(checked, "behavior-variations-7d")
    context.close()
    assert serious == []
