"""The dashboard's contract, user, revert and export actions in a real headless Chromium
against a real ``lockgate serve`` (one of each per module, tests/dashboard/conftest.py).

Every page touched is checked with axe-core (no serious or critical violation) and saved
as a screenshot in ``.artifacts/dashboard/``.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import httpx
from playwright.sync_api import Browser, Page, expect

from tests.dashboard.browser import PASSWORD, World, screenshot
from tests.dashboard.test_browser import AXE

CONTRACT = Path(__file__).parents[1] / "contracts" / "fixtures" / "executable.yaml"


def session(browser: Browser, base_url: str, username: str) -> Page:
    """A logged-in page whose context lets axe-core be injected (the CSP is bypassed)."""
    context = browser.new_context(base_url=base_url, bypass_csp=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto("/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(lambda url: "/login" not in url)
    return page


def accessible(page: Page, name: str) -> None:
    """No serious or critical axe-core violation on the page as it is; a screenshot of it."""
    page.add_script_tag(content=AXE)
    result = page.evaluate("axe.run(document)")
    found = [
        f"{v['id']} ({v['impact']}): {v['help']} — {len(v['nodes'])} node(s)"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    screenshot(page, name)
    assert found == [], name


def segments(world: World) -> None:
    for key in ("internal-users", "regions-under-review"):
        body: dict[str, object] = {"key": key, "included": []}
        world.ok(world.http.post(f"/api/v1/projects/{world.project}/segments", json=body), 201)


def test_a_contract_loaded_planned_and_applied_opens_a_change_request(
    browser: Browser, world: World
) -> None:
    segments(world)
    page = session(browser, world.url, "ann")
    page.goto(f"/contracts?project={world.project}")
    page.set_input_files("#c-upload", str(CONTRACT))  # loaded into the text box
    expect(page.locator("#c-source")).to_have_value(CONTRACT.read_text())
    page.fill("#c-file", "renewal.yaml")
    page.click("#contract-plan")
    plan = page.get_by_test_id("contract-plan")
    expect(plan).to_contain_text("needs approval: becomes a change request")
    expect(plan).to_contain_text("applies at once")
    accessible(page, "contract-plan")

    page.click("#contract-apply")
    result = page.get_by_test_id("contract-result")
    expect(result).to_contain_text("need")
    link = result.get_by_test_id("change-request-link").first
    request_id = (link.get_attribute("href") or "").rsplit("-", 1)[-1]
    accessible(page, "contract-applied")
    link.click()
    expect(page.locator(f"#request-{request_id}")).to_contain_text("renewal-recommendations")
    staging = world.config("renewal-recommendations", "staging")
    assert staging["on"] is True
    assert world.config("renewal-recommendations", "production")["on"] is False

    page.goto(f"/contracts?project={world.project}")
    page.fill("#c-source", "ai_generated_software_control:\n  behavior: [unclosed\n")
    page.click("#contract-plan")
    expect(page.get_by_test_id("contract-error")).to_contain_text("line")
    expect(page.locator("#c-source")).to_have_attribute("aria-invalid", "true")
    accessible(page, "contract-error")
    page.context.close()

    viewer = session(browser, world.url, "vic")
    viewer.goto(f"/contracts?project={world.project}")
    expect(viewer.locator("#contract-apply")).to_have_count(0)
    expect(viewer.locator("#contract-plan")).to_have_count(0)
    viewer.context.close()


def test_an_administrator_creates_a_user_who_then_logs_in(browser: Browser, world: World) -> None:
    admin, newcomer = f"root-{world.project}", f"newbie-{world.project}"
    body = {"username": admin, "password": PASSWORD, "is_admin": True, "reason": "ops"}
    world.ok(world.http.post("/api/v1/users", json=body), 201)
    page = session(browser, world.url, admin)
    page.goto(f"/access?project={world.project}")
    page.fill("#u-name", "has space")
    page.fill("#u-password", PASSWORD)
    page.get_by_role("button", name="Create user").click()
    expect(page.get_by_test_id("user-error-username")).to_be_visible()
    expect(page.locator("#u-name")).to_have_attribute("aria-invalid", "true")
    accessible(page, "access-user-error")
    page.fill("#u-name", newcomer)
    page.fill("#u-password", PASSWORD)
    page.select_option("#u-role", "viewer")
    page.fill("#u-reason", "joins the team")
    page.get_by_role("button", name="Create user").click()
    expect(page.get_by_role("status").first).to_contain_text("User created")
    expect(page.get_by_test_id(f"disabled-{newcomer}")).to_have_text("no")
    accessible(page, "access-users")
    page.context.close()

    joined = session(browser, world.url, newcomer)
    joined.goto(f"/?project={world.project}")
    expect(joined.locator("header .who")).to_contain_text(newcomer)
    expect(joined.locator("#new-user")).to_have_count(0)
    joined.context.close()


def test_reverting_to_an_earlier_version_applies_a_narrowing_at_once(
    browser: Browser, world: World
) -> None:
    world.flag("agent", "mode", risk_tier="medium")
    world.configure("agent", "staging", on=True, default={"variation": "full"})
    page = session(browser, world.url, "ann")
    page.goto(f"/behaviors/{world.project}/agent")
    expect(page.get_by_test_id("serving-staging")).to_have_text("full")
    page.locator("#versions-staging summary").click()
    expect(page.get_by_test_id("version-staging-2")).to_contain_text("(current)")
    expect(page.get_by_test_id("version-staging-2")).to_contain_text("flag:configured")
    accessible(page, "behavior-versions")
    page.fill("#revert-reason-staging-1", "errors went up")
    page.click("#revert-staging-1")
    expect(page.get_by_role("status").first).to_contain_text("Reverted")
    expect(page.get_by_test_id("serving-staging")).to_have_text("off")
    assert world.config("agent", "staging")["version"] == 3
    page.context.close()


def test_the_audit_export_downloads_the_filtered_entries(browser: Browser, world: World) -> None:
    world.flag("agent", "mode", risk_tier="medium")
    page = session(browser, world.url, "ann")
    page.goto(f"/behaviors/{world.project}/agent")
    page.fill("#kill-reason-staging", "export drill")
    page.click("#kill-staging")
    expect(page.get_by_test_id("serving-staging")).to_have_text("killed")
    page.goto(f"/audit?project={world.project}")
    page.fill("#a-action", "flag:killed")
    page.get_by_role("button", name="Search").click()
    accessible(page, "audit-export")

    with page.expect_download() as csv_download:
        page.click("#export-csv")
    download = csv_download.value
    assert download.suggested_filename.startswith(f"audit-{world.project}-")
    assert download.suggested_filename.endswith(".csv")
    rows = list(csv.DictReader(io.StringIO(Path(download.path()).read_text(encoding="utf-8"))))
    assert [(r["action"], r["actor_name"], r["reason"]) for r in rows] == [
        ("flag:killed", "ann", "export drill")
    ]

    with page.expect_download() as jsonl_download:
        page.click("#export-jsonl")
    lines = Path(jsonl_download.value.path()).read_text(encoding="utf-8").splitlines()
    [entry] = [json.loads(line) for line in lines]
    api = world.http.get(
        "/api/v1/audit", params={"project": world.project, "action": "flag:killed"}
    )
    assert isinstance(api, httpx.Response)
    expected = api.json()["items"][0]
    assert (entry["seq"], entry["hash"], entry["prev_hash"]) == (
        expected["seq"],
        expected["hash"],
        expected["prev_hash"],
    )
    assert entry["after"]["killed"] is True
    assert rows[0]["hash"] == entry["hash"]
    page.context.close()
