"""The dashboard's pages and forms in process, on both databases: sessions, CSRF, roles,
the governed write path, errors naming the field, and the headers of every page."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from lockgate.dashboard import ROUTES
from lockgate.dashboard.render import SECURITY_HEADERS
from tests.api.identity_helpers import (
    PASSWORD,
    grant,
    make_project,
    make_user,
    use_cheap_hashing,
)

PAGES = ("/", "/behaviors/shop/agent", "/approvals", "/incidents", "/audit", "/access")
BEHAVIOR = "/behaviors/shop/agent"


@pytest.fixture(autouse=True)
def _cheap(monkeypatch: pytest.MonkeyPatch) -> None:
    use_cheap_hashing(monkeypatch)


def seed_shop(client: TestClient) -> TestClient:
    """Project ``shop`` with the mode behavior ``agent``; ann (admin), bob (approver) and
    vic (viewer) as its members."""
    make_project(client, "shop")
    r = client.post(
        "/api/v1/projects/shop/flags",
        json={"key": "agent", "kind": "mode", "risk_tier": "medium", "reason": "new"},
    )
    assert r.status_code == 201, r.text
    for name, role in (("ann", "admin"), ("bob", "approver"), ("vic", "viewer")):
        make_user(client, name)
        grant(client, "shop", name, role)
    return client


@pytest.fixture
def world(client: TestClient) -> TestClient:
    return seed_shop(client)


def browse(app: FastAPI, username: str) -> Iterator[TestClient]:
    with TestClient(app, follow_redirects=False) as http:
        r = http.post("/login", data={"username": username, "password": PASSWORD, "next": "/"})
        assert r.status_code == 303, r.text
        yield http


@pytest.fixture
def ann(app: FastAPI, world: TestClient) -> Iterator[TestClient]:
    yield from browse(app, "ann")


@pytest.fixture
def vic(app: FastAPI, world: TestClient) -> Iterator[TestClient]:
    yield from browse(app, "vic")


def csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


def version(html: str, env: str) -> str:
    found = re.search(rf'data-testid="version-{env}">(\d+)<', html)
    assert found is not None
    return found.group(1)


def serving(html: str, env: str) -> str:
    found = re.search(rf'data-testid="serving-{env}">([^<]*)<', html)
    assert found is not None
    return found.group(1)


def test_every_page_asks_an_anonymous_visitor_to_log_in(app: FastAPI, world: TestClient) -> None:
    with TestClient(app, follow_redirects=False) as http:
        for path in PAGES:
            r = http.get(path)
            assert (r.status_code, r.headers["location"].split("?")[0]) == (303, "/login"), path
        assert http.get("/live").status_code == 401


def test_a_wrong_password_is_refused_on_the_login_page(app: FastAPI, world: TestClient) -> None:
    with TestClient(app, follow_redirects=False) as http:
        r = http.post("/login", data={"username": "ann", "password": "not-the-password"})
        assert r.status_code == 401
        assert "wrong username or password" in r.text.lower() or "invalid" in r.text.lower()
        missing = http.post("/login", data={"username": "ann"})
        assert missing.status_code == 422
        assert "password required" in missing.text


def test_login_goes_back_only_to_a_local_page(app: FastAPI, world: TestClient) -> None:
    with TestClient(app, follow_redirects=False) as http:
        form = {"username": "ann", "password": PASSWORD, "next": "//evil.example/x"}
        assert http.post("/login", data=form).headers["location"] == "/"


def test_every_page_renders_with_its_security_headers(ann: TestClient) -> None:
    for path in PAGES:
        r = ann.get(path)
        assert r.status_code == 200, (path, r.text[:500])
        for name, value in SECURITY_HEADERS.items():
            assert r.headers[name] == value, (path, name)
        assert "https://" not in re.sub(r'href="https://[^"]*"', "", r.text), path


def test_the_api_and_its_docs_still_answer(ann: TestClient, world: TestClient) -> None:
    assert world.get("/api/v1/projects").status_code == 200
    assert ann.get("/docs").status_code == 200
    assert ann.get("/openapi.json").status_code == 200
    paths = ann.get("/openapi.json").json()["paths"]
    assert "/api/v1/projects" in paths
    assert not {route.path for route in ROUTES} & set(paths)  # pages are not API operations


def test_a_form_without_the_session_csrf_token_is_refused(ann: TestClient) -> None:
    form = {"environment": "staging", "reason": "bad", "back": BEHAVIOR}
    r = ann.post(f"{BEHAVIOR}/kill", data=form)
    assert r.status_code == 403
    r = ann.post(f"{BEHAVIOR}/kill", data={**form, "csrf_token": "forged"})
    assert r.status_code == 403
    assert serving(ann.get(BEHAVIOR).text, "staging") == "off"


def test_kill_goes_through_the_use_case_and_is_audited(ann: TestClient, world: TestClient) -> None:
    page = ann.get(BEHAVIOR).text
    form = {"csrf_token": csrf(page), "environment": "staging", "reason": "refunds wrong"}
    r = ann.post(f"{BEHAVIOR}/kill", data={**form, "back": BEHAVIOR})
    assert (r.status_code, r.headers["location"]) == (303, f"{BEHAVIOR}?done=killed")
    assert serving(ann.get(BEHAVIOR).text, "staging") == "killed"
    entries = world.get("/api/v1/audit", params={"project": "shop", "action": "flag:killed"})
    entry = entries.json()["items"][0]
    assert (entry["source"], entry["actor_name"], entry["reason"]) == (
        "dashboard",
        "ann",
        "refunds wrong",
    )


def test_a_rollout_applies_in_staging_and_asks_for_approval_in_production(
    ann: TestClient, world: TestClient
) -> None:
    page = ann.get(BEHAVIOR).text
    token = csrf(page)
    for env, done in (("staging", "saved"), ("production", "requested")):
        form = {
            "csrf_token": token,
            "environment": env,
            "variation": "full",
            "percent": "12.5",
            "rest": "off",
            "reason": "expand",
            "version": version(page, env),
            "back": BEHAVIOR,
        }
        r = ann.post(f"{BEHAVIOR}/rollout", data=form)
        assert r.headers["location"] == f"{BEHAVIOR}?done={done}", r.text[:500]
    page = ann.get(BEHAVIOR).text
    assert serving(page, "staging") == "full 12.5% · off 87.5%"
    assert serving(page, "production") == "off"
    requests = world.get("/api/v1/projects/shop/change-requests", params={"state": "open"})
    assert [r["environment"] for r in requests.json()["items"]] == ["production"]


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("percent", "101", "percent"),
        ("percent", "a lot", "percent"),
        ("version", "three", "version"),
        ("variation", "", "variation"),
    ],
)
def test_a_bad_rollout_form_names_the_field(
    ann: TestClient, field: str, value: str, problem: str
) -> None:
    page = ann.get(BEHAVIOR).text
    form = {
        "csrf_token": csrf(page),
        "environment": "staging",
        "variation": "full",
        "percent": "10",
        "rest": "off",
        "reason": "x",
        "version": version(page, "staging"),
    }
    r = ann.post(f"{BEHAVIOR}/rollout", data={**form, field: value})
    assert r.status_code == 422
    assert f"<code>{problem}</code>" in r.text


def test_a_stale_version_is_a_conflict_not_an_overwrite(ann: TestClient) -> None:
    page = ann.get(BEHAVIOR).text
    form = {
        "csrf_token": csrf(page),
        "environment": "staging",
        "variation": "full",
        "percent": "10",
        "rest": "off",
        "reason": "x",
        "version": version(page, "staging"),
    }
    assert ann.post(f"{BEHAVIOR}/rollout", data=form).status_code == 303
    assert ann.post(f"{BEHAVIOR}/rollout", data={**form, "percent": "90"}).status_code == 409


def test_the_configuration_editor_refuses_bad_json_naming_the_line(ann: TestClient) -> None:
    page = ann.get(BEHAVIOR).text
    form = {
        "csrf_token": csrf(page),
        "environment": "staging",
        "version": version(page, "staging"),
        "reason": "x",
    }
    r = ann.post(f"{BEHAVIOR}/configure", data={**form, "config": '{"on": tru'})
    assert r.status_code == 422
    assert "line 1, column" in r.text
    r = ann.post(f"{BEHAVIOR}/configure", data={**form, "config": '{"killed": false}'})
    assert r.status_code == 422
    assert "<code>config.killed</code>" in r.text


def test_a_viewer_sees_no_button_that_would_fail(vic: TestClient) -> None:
    for path in PAGES:
        html = vic.get(path).text
        assert 'method="post" action="/behaviors' not in html, path
        assert "Approve #" not in html, path
        assert "Preview what falls back" not in html, path
    page = vic.get(BEHAVIOR).text
    assert "your role: viewer" in page
    form = {"csrf_token": csrf(page), "environment": "staging", "reason": "x"}
    assert vic.post(f"{BEHAVIOR}/kill", data=form).status_code == 403


def test_a_hidden_project_is_not_found(vic: TestClient) -> None:
    assert vic.get("/?project=nope").status_code == 404
    assert vic.get("/behaviors/nope/agent").status_code == 404


def test_every_route_is_a_page_or_a_form(app: FastAPI) -> None:
    methods = {m for route in ROUTES for m in (route.methods or ()) if m != "HEAD"}
    assert methods == {"GET", "POST"}
    forms = [r.path for r in ROUTES if "POST" in (r.methods or ())]
    assert "/login" in forms
    assert "/logout" in forms


def test_a_staged_rollout_is_shown_and_paused_from_the_page(
    ann: TestClient, world: TestClient
) -> None:
    plan = {"variation": "full", "stable": "off", "reason": "stages",
            "stages": [{"percent": 5, "min_hold": "1d"}, {"percent": 100}]}  # fmt: skip
    r = world.put("/api/v1/projects/shop/flags/agent/environments/staging/rollout", json=plan)
    assert r.status_code in (200, 201), r.text
    page = ann.get(BEHAVIOR).text
    shown = re.search(r'data-testid="plan-staging">(.*?)</p>', page, re.DOTALL)
    assert shown is not None
    assert "5% → 100%" in shown.group(1)
    form = {"csrf_token": csrf(page), "environment": "staging", "reason": "hold", "back": BEHAVIOR}
    r = ann.post(f"{BEHAVIOR}/plan/pause", data=form)
    assert r.headers["location"] == f"{BEHAVIOR}?done=paused"
    status = world.get("/api/v1/projects/shop/flags/agent/environments/staging/rollout")
    assert status.json()["status"] == "paused"
    assert ann.post(f"{BEHAVIOR}/plan/explode", data=form).status_code == 404


def test_the_behavior_page_explains_its_contract(ann: TestClient, world: TestClient) -> None:
    source = (Path(__file__).parents[1] / "contracts" / "fixtures" / "executable.yaml").read_text()
    for segment in ("internal-users", "regions-under-review"):
        body: dict[str, object] = {"key": segment, "included": []}
        assert world.post("/api/v1/projects/shop/segments", json=body).status_code == 201
    r = world.post(
        "/api/v1/projects/shop/contracts/apply", json={"source": source, "file": "renewal.yaml"}
    )
    assert r.status_code in (200, 202), r.text
    page = ann.get("/behaviors/shop/renewal-recommendations").text
    assert "renewal.yaml" in page
    explained = re.search(r'data-testid="contract-explain">(.*?)</table>', page, re.DOTALL)
    assert explained is not None
    assert explained.group(1).count("<tr>") > 5
    assert "backend_workflow" in page  # the source itself


def _fill(path: str) -> str:
    values = {"project": "shop", "flag": "agent", "request": "999", "verdict": "approve"}
    return re.sub(r"{(\w+)}", lambda m: values[m.group(1)], path)


def test_no_form_answers_a_server_error_whatever_it_is_sent(ann: TestClient) -> None:
    token = csrf(ann.get(BEHAVIOR).text)
    bodies: list[dict[str, str]] = [
        {"csrf_token": token},
        {"csrf_token": token, "environment": "nowhere", "reason": "x", "version": "1"},
        {"csrf_token": token, "environment": "staging", "version": "99999999999", "reason": ""},
        {"csrf_token": token, "environment": "staging\u00e9", "percent": "NaN", "config": "[]"},
    ]
    for route in ROUTES:
        if "POST" not in (route.methods or ()) or route.path in ("/logout", "/login"):
            continue
        for body in bodies:
            r = ann.post(_fill(route.path), data=body)
            assert r.status_code < 500, (route.path, body, r.text[:300])
            assert "Traceback" not in r.text
    r = ann.post(f"{BEHAVIOR}/kill", content=b'{"environment": "staging"}')
    assert r.status_code == 422  # not a form: refused, naming the content type
    assert "<code>Content-Type</code>" in r.text


def test_an_admin_grants_and_revokes_a_role_from_the_access_page(
    ann: TestClient, vic: TestClient, world: TestClient
) -> None:
    make_user(world, "dora")
    page = ann.get("/access?project=shop").text
    assert "Grant the role" in page
    assert "Grant the role" not in vic.get("/access?project=shop").text
    form = {"csrf_token": csrf(page), "project": "shop", "username": "dora", "role": "editor",
            "environment": "staging", "reason": "on call"}  # fmt: skip
    r = ann.post("/access/members", data=form)
    assert r.headers["location"] == "/access?project=shop&done=granted_role"
    roles = world.get("/api/v1/projects/shop/members/dora").json()
    assert "editor" in str(roles)
    assert "staging" in str(roles)
    revoke = {"csrf_token": form["csrf_token"], "project": "shop", "username": "dora"}
    assert ann.post("/access/members/revoke", data=revoke).status_code == 303
    assert world.get("/api/v1/projects/shop/members/dora").status_code == 404
    bad = ann.post("/access/members", data={**form, "role": "overlord"})
    assert bad.status_code == 422
    assert "<code>role</code>" in bad.text


def test_the_overview_shows_why_a_permanent_behavior_stays(
    ann: TestClient, world: TestClient
) -> None:
    url = "/api/v1/projects/shop/flags/agent"
    etag = world.get(url).headers["etag"]
    body = {"lifecycle": "permanent", "reason": "operational kill switch"}
    changed = world.patch(url, json=body, headers={"If-Match": etag})
    assert changed.status_code == 200, changed.text
    page = ann.get("/?project=shop")
    assert page.status_code == 200
    assert "permanent: operational kill switch" in page.text
