"""The dashboard in a real headless Chromium against a real ``lockgate serve``.

One browser and one server for the module (tests/dashboard/conftest.py); each test has its
own project. SDKs connect to the same server and see what the pages change. Screenshots of
every page go to ``.artifacts/dashboard/``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from lockgate.engine import Mode
from lockgate.engine.result import Reason
from lockgate.sdk import ApprovalStatus, Client
from tests.dashboard.browser import ROOT, World, login, screenshot
from tests.delivery.servers import ADMIN_TOKEN
from tests.sdk.test_sync_live import TUNING

CLI = (sys.executable, "-m", "lockgate.cli.main")
AXE = (ROOT / "tests" / "dashboard" / "vendor" / "axe.min.js").read_text(encoding="utf-8")


def until(predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def live(page: Page) -> None:
    """Wait until the page follows the server's feed."""
    expect(page.locator("body")).to_have_attribute("data-live", "open")


def csrf(page: Page) -> str:
    return str(page.locator("input[name=csrf_token]").first.input_value())


def set_rollout(page: Page, env: str, variation: str, percent: str, rest: str) -> None:
    page.select_option(f"#rollout-variation-{env}", variation)
    page.fill(f"#rollout-percent-{env}", percent)
    page.select_option(f"#rollout-rest-{env}", rest)
    page.fill(f"#rollout-reason-{env}", "expand the rollout")
    page.click(f"#rollout-{env}")


def test_log_in_and_see_every_environment_side_by_side(browser: Browser, world: World) -> None:
    world.flag("checkout", risk_tier="medium", owner="payments", tags=["payments"])
    world.configure("checkout", "staging", on=True, default={"variation": "on"})
    page = browser.new_page(base_url=world.url)
    page.goto("/login")
    page.get_by_label("Username").fill("ann")
    page.get_by_label("Password").fill("not-her-password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("username or password")
    page.close()

    page = login(browser, world.url, "ann")
    page.goto(f"/?project={world.project}")
    headers = page.locator("table.overview thead th")
    expect(headers.filter(has_text="staging")).to_contain_text("unprotected")
    expect(headers.filter(has_text="production")).to_contain_text("protected")
    row = page.locator("table.overview tbody tr", has_text="checkout")
    expect(row.locator("td[data-env=staging]")).to_contain_text("on")
    expect(row.locator("td[data-env=production]")).to_contain_text("off")
    expect(row).to_contain_text("medium")
    screenshot(page, "overview")
    page.fill("#f-q", "nothing-matches-this")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("table.overview tbody")).to_contain_text("No behavior matches.")
    page.context.close()


def test_a_percentage_set_on_the_page_reaches_a_connected_sdk(
    browser: Browser, world: World
) -> None:
    world.flag("checkout")
    with Client(world.sdk_key("staging"), world.url, tuning=TUNING, events=False) as sdk:
        assert sdk.wait_until_ready(20)
        users = [{"key": f"user-{i}"} for i in range(200)]
        assert not any(sdk.bool_variation("checkout", u, True) for u in users)
        page = login(browser, world.url, "ann")
        page.goto(f"/behaviors/{world.project}/checkout")
        set_rollout(page, "staging", "on", "30", "off")
        expect(page.get_by_test_id("serving-staging")).to_have_text("on 30% · off 70%")
        screenshot(page, "behavior")

        def share() -> float:
            return sum(sdk.bool_variation("checkout", u, False) for u in users) / len(users)

        until(lambda: 0.15 < share() < 0.45)
        set_rollout(page, "staging", "on", "100", "off")
        until(lambda: share() == 1.0)
        page.context.close()


def test_the_kill_switch_serves_the_fallback_to_a_connected_sdk(
    browser: Browser, world: World
) -> None:
    world.flag("agent", "mode", risk_tier="medium")
    world.configure("agent", "staging", on=True, default={"variation": "full"})
    with Client(world.sdk_key("staging"), world.url, tuning=TUNING, events=False) as sdk:
        assert sdk.wait_until_ready(20)
        user = {"key": "u1"}
        until(lambda: sdk.mode("agent", user) is Mode.FULL)
        page = login(browser, world.url, "ann")
        page.goto(f"/behaviors/{world.project}/agent")
        page.fill("#kill-reason-staging", "refunds look wrong")
        page.click("#kill-staging")
        expect(page.get_by_test_id("serving-staging")).to_have_text("killed")
        expect(page.get_by_role("status").first).to_contain_text("Killed")
        until(lambda: sdk.mode_detail("agent", user).reason is Reason.KILLED)
        assert sdk.mode("agent", user) is Mode.OFF
        expect(page.get_by_test_id("serving-production")).to_have_text("off")  # only staging
        page.context.close()


def test_the_kill_flow_works_with_the_keyboard_alone(browser: Browser, world: World) -> None:
    world.flag("agent", "mode", risk_tier="medium")
    page = login(browser, world.url, "ann")
    page.goto(f"/behaviors/{world.project}/agent")
    target = "kill-reason-production"
    for _ in range(120):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement && document.activeElement.id") == target:
            break
    else:
        pytest.fail(f"#{target} cannot be reached with Tab")
    page.keyboard.type("incident drill")
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.textContent")
    assert focused.strip() == "Kill in production"
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("serving-production")).to_have_text("killed")
    assert world.config("agent", "production")["killed"] is True
    page.context.close()


def test_a_second_user_approves_what_the_first_proposed(browser: Browser, world: World) -> None:
    world.flag("agent", "mode", risk_tier="medium")
    ann = login(browser, world.url, "ann")
    ann.goto(f"/behaviors/{world.project}/agent")
    set_rollout(ann, "production", "full", "10", "off")
    expect(ann.get_by_role("status").first).to_contain_text("change request was opened")
    expect(ann.get_by_test_id("serving-production")).to_have_text("off")

    ann.goto(f"/approvals?project={world.project}")
    request = ann.locator("article.request").first
    request_id = int(re.findall(r"\d+", request.get_attribute("id") or "")[0])
    expect(request).to_contain_text("You proposed this change")
    expect(ann.locator(f"#approve-{request_id}")).to_have_count(0)
    # Nor can the author approve by sending the form anyway: the use-case refuses.
    refused = ann.request.post(
        f"/approvals/{request_id}/approve",
        form={"csrf_token": csrf(ann), "comment": "me"},
        max_redirects=0,
    )
    assert refused.status == 403
    screenshot(ann, "approvals")

    bob = login(browser, world.url, "bob")
    bob.goto(f"/approvals?project={world.project}")
    expect(bob.locator(f"#request-{request_id}")).to_contain_text("ann")
    expect(bob.locator(f"#request-{request_id} table.diff")).to_contain_text("default")
    bob.fill(f"#approve-comment-{request_id}", "guardrails in place")
    bob.click(f"#approve-{request_id}")
    expect(bob.get_by_role("status").first).to_contain_text("Approval recorded")

    ann.goto(f"/approvals?project={world.project}")
    ann.click(f"#apply-{request_id}")
    ann.goto(f"/behaviors/{world.project}/agent")
    expect(ann.get_by_test_id("serving-production")).to_have_text("full 10% · off 90%")
    assert world.config("agent", "production")["default"]["split"][0]["weight"] == 10_000
    ann.context.close()
    bob.context.close()


def test_an_incident_started_from_the_cli_appears_in_an_open_page(
    browser: Browser, world: World
) -> None:
    world.flag("agent", "mode", risk_tier="high", tags=["payments"])
    page = login(browser, world.url, "vic")
    page.goto(f"/?project={world.project}")
    live(page)
    expect(page.locator(".incident-banner")).to_have_count(0)
    env = {**os.environ, "LOCKGATE_URL": world.url, "LOCKGATE_TOKEN": ADMIN_TOKEN}
    command = [*CLI, "incident", "start", world.project, "--env", "production"]
    started = subprocess.run(
        [*command, "--tag", "payments", "--reason", "payments degraded"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert started.returncode == 0, started.stderr
    banner = page.locator(".incident-banner")
    expect(banner).to_contain_text("active in production", timeout=10_000)
    expect(banner).to_contain_text("payments degraded")
    row = page.locator("table.overview tbody tr", has_text="agent")
    expect(row.locator("td[data-env=production]")).to_contain_text("incident")
    screenshot(page, "incident-banner")
    page.context.close()


def test_a_runtime_approval_granted_on_the_page_unblocks_the_waiting_sdk(
    browser: Browser, world: World
) -> None:
    world.flag("refunds", "mode", risk_tier="high")
    out: list[Any] = []
    with Client(world.sdk_key("production"), world.url, events=False) as sdk:
        thread = threading.Thread(
            target=lambda: out.append(
                sdk.request_approval("refunds", "refund", {"key": "u-7"}, "refund 1042", timeout=60)
            ),
            daemon=True,
        )
        thread.start()
        bob = login(browser, world.url, "bob")
        bob.goto(f"/approvals?project={world.project}")
        live(bob)
        card = bob.locator("article", has_text="refund 1042")
        expect(card).to_be_visible(timeout=15_000)  # appears live, without a reload
        expect(card.locator(".countdown")).to_contain_text(re.compile(r"in \d+ s"))
        screenshot(bob, "runtime-approval")
        card.get_by_role("button", name=re.compile("^Approve action")).click()
        thread.join(20)
    assert out, "the SDK call is still waiting"
    decision = out[0]
    assert decision.status is ApprovalStatus.APPROVED
    assert decision.decided_by == ("bob",)
    bob.context.close()


PAGES = {
    "login": "/login",
    "overview": "/?project={p}",
    "behavior": "/behaviors/{p}/agent",
    "approvals": "/approvals?project={p}",
    "incidents": "/incidents?project={p}&preview_environment=staging",
    "audit": "/audit?project={p}&verify=1",
    "access": "/access?project={p}",
}


def test_every_page_passes_axe_core(browser: Browser, world: World) -> None:
    world.flag("agent", "mode", risk_tier="medium", tags=["payments"])
    world.configure("agent", "staging", on=True, default={"variation": "observe"})
    admin = login(browser, world.url, "ann")
    admin.goto(f"/behaviors/{world.project}/agent")
    set_rollout(admin, "production", "full", "5", "off")  # a change request to show
    admin.context.close()
    context = browser.new_context(base_url=world.url, bypass_csp=True)  # to inject axe
    page = context.new_page()
    found: dict[str, list[str]] = {}
    for name, template in PAGES.items():
        if name != "login" and "/login" in page.url:
            page.get_by_label("Username").fill("ann")
            page.get_by_label("Password").fill("correct-horse-battery-staple")
            page.get_by_role("button", name="Log in").click()
            page.wait_for_url(lambda url: "/login" not in url)
        page.goto(template.format(p=world.project))
        page.add_script_tag(content=AXE)
        result = page.evaluate("axe.run(document)")
        found[name] = [
            f"{v['id']} ({v['impact']}): {v['help']} — {len(v['nodes'])} node(s)"
            for v in result["violations"]
            if v["impact"] in ("serious", "critical")
        ]
        screenshot(page, f"page-{name}")
        if name == "login":
            page.goto(PAGES["login"])
    assert found == {name: [] for name in PAGES}
    context.close()
