"""The dashboard's contract, user, revert and export actions in process, on both databases:
the governed path, CSRF, what each role is shown and refused, and bad input named."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from lockgate.cli.audit_file import verify_export
from lockgate.control.evidence import audit_export
from lockgate.store.audit import entry_hash
from tests.api.identity_helpers import PASSWORD, make_user, use_cheap_hashing
from tests.dashboard.test_pages import browse, csrf, seed_shop, serving, version

FIXTURES = Path(__file__).parents[1] / "contracts" / "fixtures"
EXECUTABLE = (FIXTURES / "executable.yaml").read_text()
BEHAVIOR = "/behaviors/shop/agent"


@pytest.fixture(autouse=True)
def _cheap(monkeypatch: pytest.MonkeyPatch) -> None:
    use_cheap_hashing(monkeypatch)


@pytest.fixture
def world(client: TestClient) -> TestClient:
    seed_shop(client)
    for segment in ("internal-users", "regions-under-review"):
        body: dict[str, Any] = {"key": segment, "included": []}
        assert client.post("/api/v1/projects/shop/segments", json=body).status_code == 201
    make_user(client, "sam", is_admin=True)
    return client


@pytest.fixture
def ann(app: FastAPI, world: TestClient) -> Iterator[TestClient]:
    yield from browse(app, "ann")


@pytest.fixture
def vic(app: FastAPI, world: TestClient) -> Iterator[TestClient]:
    yield from browse(app, "vic")


@pytest.fixture
def sam(app: FastAPI, world: TestClient) -> Iterator[TestClient]:
    yield from browse(app, "sam")


def _testid(html: str, name: str) -> str:
    found = re.search(rf'<(\w+)[^>]*data-testid="{name}"[^>]*>(.*?)</\1>', html, re.DOTALL)
    assert found is not None, name
    return found.group(2)


# -- contracts ------------------------------------------------------------------------------


def _contract_form(page: str, **more: str) -> dict[str, str]:
    form = {"csrf_token": csrf(page), "project": "shop", "source": EXECUTABLE}
    return {**form, "file": "renewal.yaml", "reason": "", **more}


def test_a_contract_is_planned_then_applied_into_a_change_request(
    ann: TestClient, world: TestClient
) -> None:
    page = ann.get("/contracts?project=shop").text
    assert 'id="contract-plan"' in page
    assert 'id="contract-apply"' in page
    planned = ann.post("/contracts/plan", data=_contract_form(page))
    assert planned.status_code == 200, planned.text[:500]
    plan = _testid(planned.text, "contract-plan")
    assert "needs approval: becomes a change request" in plan  # production, protected
    assert "posture.medium.approvals.protected = 1" in plan
    assert "applies at once" in plan  # staging
    assert world.get("/api/v1/projects/shop/flags/renewal-recommendations").status_code == 404
    assert EXECUTABLE.splitlines()[2] in planned.text  # the source stays in the text box

    applied = ann.post("/contracts/apply", data=_contract_form(page))
    assert applied.status_code == 200, applied.text[:500]
    result = _testid(applied.text, "contract-result")
    links = re.findall(r'href="/approvals\?project=shop#request-(\d+)"', result)
    opened = world.get("/api/v1/projects/shop/change-requests", params={"state": "open"})
    ids = sorted(str(r["id"]) for r in opened.json()["items"])
    assert ids
    assert sorted(set(links)) == ids
    config = world.get("/api/v1/projects/shop/flags/renewal-recommendations/environments/staging")
    assert config.json()["on"] is True
    entry = world.get("/api/v1/audit", params={"action": "contract:applied"}).json()["items"][0]
    assert (entry["actor_name"], entry["source"]) == ("ann", "dashboard")


@pytest.mark.parametrize(
    ("source", "shown"),
    [
        pytest.param("ai_generated_software_control: [unclosed", "line 1", id="yaml-syntax"),
        pytest.param(
            EXECUTABLE.replace("segment: internal-users", "segment: nobody"),
            "line 8",
            id="unknown-segment",
        ),
        pytest.param(
            EXECUTABLE.replace("  key: renewal-recommendations\n", ""),
            "ai_generated_software_control.key",
            id="schema",
        ),
        pytest.param("   ", "<code>source</code>", id="empty"),
    ],
)
def test_a_bad_contract_comes_back_with_the_problem_next_to_the_field(
    ann: TestClient, world: TestClient, source: str, shown: str
) -> None:
    page = ann.get("/contracts?project=shop").text
    for action in ("plan", "apply"):
        r = ann.post(f"/contracts/{action}", data=_contract_form(page, source=source))
        assert r.status_code == 422, r.text[:500]
        error = _testid(r.text, "contract-error")
        assert shown in error
        assert 'aria-describedby="c-source-error"' in r.text
        assert 'id="c-source"' in r.text  # the same form, to correct
    assert world.get("/api/v1/audit", params={"action": "contract:applied"}).json()["items"] == []


def test_a_viewer_sees_neither_contract_button_and_is_refused_anyway(vic: TestClient) -> None:
    page = vic.get("/contracts?project=shop")
    assert page.status_code == 200
    assert 'id="contract-plan"' not in page.text
    assert 'id="contract-apply"' not in page.text
    assert "needs the editor role" in page.text
    r = vic.post("/contracts/apply", data=_contract_form(page.text))
    assert r.status_code == 403
    assert "Traceback" not in r.text


def test_a_contract_form_without_its_csrf_token_is_refused(
    ann: TestClient, world: TestClient
) -> None:
    form = _contract_form(ann.get("/contracts?project=shop").text)
    del form["csrf_token"]
    assert ann.post("/contracts/apply", data=form).status_code == 403
    assert world.get("/api/v1/projects/shop/flags/renewal-recommendations").status_code == 404


def test_the_contracts_page_starts_from_a_behaviors_last_contract(
    ann: TestClient, world: TestClient
) -> None:
    body = {"source": EXECUTABLE, "file": "renewal.yaml"}
    assert world.post("/api/v1/projects/shop/contracts/apply", json=body).status_code == 202
    behavior = ann.get("/behaviors/shop/renewal-recommendations").text
    assert "/contracts?project=shop&amp;behavior=renewal-recommendations" in behavior
    page = ann.get("/contracts?project=shop&behavior=renewal-recommendations").text
    assert 'value="renewal.yaml"' in page
    assert "backend_workflow" in page
    again = ann.post("/contracts/plan", data=_contract_form(page))
    assert "unchanged" in _testid(again.text, "contract-plan")


# -- users ----------------------------------------------------------------------------------


def _user_form(page: str, **more: str) -> dict[str, str]:
    form = {"csrf_token": csrf(page), "project": "shop", "back": "/access?project=shop"}
    return {**form, "reason": "new on the team", **more}


def test_a_system_admin_creates_a_user_who_logs_in_with_the_role_given(
    app: FastAPI, sam: TestClient, world: TestClient
) -> None:
    page = sam.get("/access?project=shop").text
    assert 'action="/access/users"' in page
    form = _user_form(page, username="dora", password=PASSWORD, role="editor")
    r = sam.post("/access/users", data=form)
    assert r.headers["location"] == "/access?project=shop&done=user_created", r.text[:500]
    member = world.get("/api/v1/projects/shop/members/dora").json()
    assert "editor" in json.dumps(member)
    for dora in browse(app, "dora"):
        assert "your role: editor" in dora.get(BEHAVIOR).text
    entry = world.get("/api/v1/audit", params={"action": "user:created"}).json()["items"][0]
    assert (entry["object_key"], entry["actor_name"], entry["source"]) == (
        "dora",
        "sam",
        "dashboard",
    )
    assert PASSWORD not in json.dumps(entry)


def test_a_generated_password_is_shown_once_and_works(
    app: FastAPI, sam: TestClient, world: TestClient
) -> None:
    page = sam.get("/access?project=shop").text
    r = sam.post("/access/users", data=_user_form(page, username="eve", password=""))
    assert r.status_code == 200
    assert "shown only once" in r.text
    found = re.search(r'id="secret" class="secret" readonly value="([^"]+)"', r.text)
    assert found is not None
    with TestClient(app, follow_redirects=False) as http:
        login = {"username": "eve", "password": found.group(1), "next": "/"}
        assert http.post("/login", data=login).status_code == 303
    assert found.group(1) not in sam.get("/access?project=shop").text


@pytest.mark.parametrize(
    ("fields", "named", "status"),
    [
        ({"username": "has space", "display_name": "Has"}, "username", 422),
        ({"username": "", "password": PASSWORD}, "username", 422),
        ({"username": "fay", "password": "tiny-pw"}, "password", 422),
        ({"username": "fay", "password": PASSWORD, "role": "overlord"}, "role", 422),
        ({"username": "ann", "password": PASSWORD}, "username", 409),
    ],
)
def test_a_bad_new_user_comes_back_with_the_problem_next_to_the_field(
    sam: TestClient, world: TestClient, fields: dict[str, str], named: str, status: int
) -> None:
    page = sam.get("/access?project=shop").text
    r = sam.post("/access/users", data=_user_form(page, **fields))
    assert r.status_code == status, r.text[:500]
    assert "The user was not created" in _testid(r.text, "user-error")
    assert _testid(r.text, f"user-error-{named}")
    assert f'aria-describedby="u-{"name" if named == "username" else named}-error"' in r.text
    assert f'value="{fields["username"]}"' in r.text  # kept, to correct
    if fields.get("password"):
        assert fields["password"] not in r.text  # never sent back
    assert world.get("/api/v1/users/fay").status_code == 404


def test_a_role_in_an_unknown_project_creates_no_user(sam: TestClient, world: TestClient) -> None:
    page = sam.get("/access?project=shop").text
    form = _user_form(page, username="fay", password=PASSWORD, role="viewer", project="nope")
    assert sam.post("/access/users", data=form).status_code == 404
    assert world.get("/api/v1/users/fay").status_code == 404


def test_the_user_forms_need_the_session_csrf_token(sam: TestClient, world: TestClient) -> None:
    page = sam.get("/access?project=shop").text
    form = _user_form(page, username="fay", password=PASSWORD)
    assert sam.post("/access/users", data={**form, "csrf_token": "forged"}).status_code == 403
    del form["csrf_token"]
    assert sam.post("/access/users", data=form).status_code == 403
    disable = {"username": "vic", "version": "1", "disabled": "true"}
    assert sam.post("/access/users/disabled", data=disable).status_code == 403
    assert world.get("/api/v1/users/fay").status_code == 404
    assert world.get("/api/v1/users/vic").json()["disabled"] is False


def test_only_a_system_admin_sees_and_may_use_the_user_forms(
    ann: TestClient, world: TestClient
) -> None:
    page = ann.get("/access?project=shop").text  # a project admin, not a system admin
    assert 'action="/access/users"' not in page
    assert 'action="/access/users/disabled"' not in page
    r = ann.post("/access/users", data=_user_form(page, username="gus", password=PASSWORD))
    assert r.status_code == 403
    assert "system administrator" in r.text
    assert world.get("/api/v1/users/gus").status_code == 404


def test_disabling_a_user_ends_their_session_and_enabling_lets_them_back(
    app: FastAPI, sam: TestClient, vic: TestClient, world: TestClient
) -> None:
    page = sam.get("/access?project=shop").text
    assert 'id="disable-sam"' not in page  # not oneself
    found = re.search(r'name="username" value="vic"><input type="hidden" name="version" '
                      r'value="(\d+)">', page)  # fmt: skip
    assert found is not None
    form = _user_form(page, username="vic", version=found.group(1), disabled="true")
    r = sam.post("/access/users/disabled", data=form)
    assert r.headers["location"] == "/access?project=shop&done=disabled"
    assert vic.get(BEHAVIOR).status_code == 303  # to the login page: the session ended
    stale = sam.post("/access/users/disabled", data={**form, "disabled": "false"})
    assert stale.status_code == 409  # the version moved: a conflict, not an overwrite
    page = sam.get("/access?project=shop").text
    assert 'id="enable-vic"' in page
    assert re.search(r'data-testid="disabled-vic">yes<', page)
    fresh = re.search(r'name="username" value="vic"><input type="hidden" name="version" '
                      r'value="(\d+)">', page)  # fmt: skip
    assert fresh is not None
    back = {**form, "disabled": "false", "version": fresh.group(1)}
    assert sam.post("/access/users/disabled", data=back).status_code == 303
    for again in browse(app, "vic"):  # logs in again
        assert again.get(BEHAVIOR).status_code == 200
    bad = sam.post("/access/users/disabled", data={**back, "disabled": "maybe"})
    assert bad.status_code == 422
    assert "<code>disabled</code>" in bad.text


# -- revert ---------------------------------------------------------------------------------


def _config(world: TestClient, env: str) -> dict[str, Any]:
    r = world.get(f"/api/v1/projects/shop/flags/agent/environments/{env}")
    assert r.status_code == 200, r.text
    return dict(r.json())


def _full_in_production(app: FastAPI, world: TestClient) -> None:
    """Production serves ``full`` (version 2) through an approved change request."""
    path = "/api/v1/projects/shop/flags/agent/environments/production"
    body = {"on": True, "default": {"variation": "full"}, "reason": "launch"}
    r = world.patch(path, json=body, headers={"If-Match": '"1"'})
    assert r.status_code == 202, r.text
    request_id = r.json()["id"]
    for bob in browse(app, "bob"):
        page = bob.get("/approvals?project=shop").text
        approved = bob.post(f"/approvals/{request_id}/approve", data={"csrf_token": csrf(page)})
        assert approved.status_code == 303, approved.text[:500]
    applied = world.post(f"/api/v1/change-requests/{request_id}/apply", json={})
    assert applied.status_code == 200, applied.text


def test_reverting_narrower_applies_at_once_and_wider_asks_for_approval(
    app: FastAPI, ann: TestClient, world: TestClient
) -> None:
    _full_in_production(app, world)
    page = ann.get(BEHAVIOR).text
    assert serving(page, "production") == "full"
    listed = _testid(page, "version-production-1")
    assert 'id="revert-production-1"' in listed
    assert 'id="revert-production-2"' not in page  # the current version
    assert "audit #" in _testid(page, "version-production-2")
    assert "change request #" in _testid(page, "version-production-2")
    current = version(page, "production")
    form = {"csrf_token": csrf(page), "environment": "production", "to_version": "1",
            "version": current, "reason": "too early", "back": BEHAVIOR}  # fmt: skip
    r = ann.post(f"{BEHAVIOR}/revert", data=form)
    assert r.headers["location"] == f"{BEHAVIOR}?done=reverted", r.text[:500]
    assert _config(world, "production")["on"] is False
    entry = world.get("/api/v1/audit", params={"action": "flag:reverted"}).json()["items"][0]
    assert (entry["refs"]["reverted_to_version"], entry["actor_name"]) == (1, "ann")

    page = ann.get(BEHAVIOR).text
    wider = {**form, "to_version": "2", "version": version(page, "production")}
    r = ann.post(f"{BEHAVIOR}/revert", data=wider)
    assert r.headers["location"] == f"{BEHAVIOR}?done=requested"
    assert _config(world, "production")["on"] is False  # waits for its approval
    opened = world.get("/api/v1/projects/shop/change-requests", params={"state": "open"})
    assert [i["environment"] for i in opened.json()["items"]] == ["production"]


def test_a_bad_revert_is_refused_naming_the_field(ann: TestClient, world: TestClient) -> None:
    world.patch(
        "/api/v1/projects/shop/flags/agent/environments/staging",
        json={"on": True, "reason": "try"},
        headers={"If-Match": '"1"'},
    )
    page = ann.get(BEHAVIOR).text
    form = {"csrf_token": csrf(page), "environment": "staging", "to_version": "1",
            "version": version(page, "staging"), "reason": "back"}  # fmt: skip
    missing = ann.post(f"{BEHAVIOR}/revert", data={**form, "reason": " "})
    assert missing.status_code == 422
    assert "<code>reason</code>" in missing.text
    assert ann.post(f"{BEHAVIOR}/revert", data={**form, "to_version": "77"}).status_code == 404
    bad = ann.post(f"{BEHAVIOR}/revert", data={**form, "to_version": "v1"})
    assert "<code>to_version</code>" in bad.text
    assert ann.post(f"{BEHAVIOR}/revert", data={**form, "csrf_token": "x"}).status_code == 403
    assert _config(world, "staging")["on"] is True


def test_a_viewer_sees_the_versions_but_no_revert_button(
    vic: TestClient, world: TestClient
) -> None:
    world.patch(
        "/api/v1/projects/shop/flags/agent/environments/staging",
        json={"on": True, "reason": "try"},
        headers={"If-Match": '"1"'},
    )
    page = vic.get(BEHAVIOR).text
    assert "v1" in _testid(page, "version-staging-1")
    assert "/revert" not in page
    form = {"csrf_token": csrf(page), "environment": "staging", "to_version": "1",
            "version": "2", "reason": "x"}  # fmt: skip
    assert vic.post(f"{BEHAVIOR}/revert", data=form).status_code == 403
    assert _config(world, "staging")["on"] is True


# -- audit export ---------------------------------------------------------------------------


def _kill(ann: TestClient) -> None:
    page = ann.get(BEHAVIOR).text
    form = {"csrf_token": csrf(page), "environment": "staging", "reason": 'a, "quoted" reason'}
    assert ann.post(f"{BEHAVIOR}/kill", data=form).status_code == 303


def test_the_export_holds_exactly_the_filtered_entries_with_their_hashes(
    ann: TestClient, world: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    _kill(ann)
    monkeypatch.setattr(audit_export, "MAX_LIMIT", 2)  # several pages, however few entries
    expected = world.get("/api/v1/audit", params={"project": "shop", "limit": 500}).json()
    expected_seqs = sorted(e["seq"] for e in expected["items"])
    assert len(expected_seqs) > 4

    r = ann.get("/audit/export", params={"format": "jsonl", "project": "shop"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/x-ndjson; charset=utf-8"
    assert r.headers["content-disposition"].startswith('attachment; filename="audit-shop-')
    lines = [json.loads(line) for line in r.text.splitlines()]
    assert [e["seq"] for e in lines] == expected_seqs
    by_seq = {e["seq"]: e for e in expected["items"]}
    assert all(e["hash"] == by_seq[e["seq"]]["hash"] for e in lines)
    assert all(e["prev_hash"] == by_seq[e["seq"]]["prev_hash"] for e in lines)
    killed = [e for e in lines if e["action"] == "flag:killed"]
    assert len(killed) == 1
    assert (killed[0]["before"]["version"], killed[0]["after"]["version"]) == (1, 2)
    assert "killed" not in killed[0]["before"]
    assert killed[0]["after"]["killed"] is True

    r = ann.get("/audit/export", params={"format": "csv", "project": "shop",
                                         "action": "flag:killed", "actor": "ann"})  # fmt: skip
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert r.headers["content-disposition"].endswith('.csv"')
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [(row["seq"], row["hash"]) for row in rows] == [
        (str(killed[0]["seq"]), killed[0]["hash"])
    ]
    assert rows[0]["reason"] == 'a, "quoted" reason'
    assert "killed" in rows[0]["changes"]


def test_a_whole_log_export_verifies_as_a_chain_and_each_entry_by_its_hash(
    sam: TestClient, ann: TestClient
) -> None:
    _kill(ann)
    assert 'id="export-all"' in sam.get("/audit?project=shop").text
    assert 'id="export-all"' not in ann.get("/audit?project=shop").text
    whole = sam.get("/audit/export", params={"format": "jsonl"})
    assert whole.headers["content-disposition"].startswith('attachment; filename="audit-all-')
    report = verify_export(whole.text.splitlines(), "export")
    assert (report.problem, report.first_seq) == (None, 1)
    assert report.entries == len(whole.text.splitlines()) > 10
    mine = ann.get("/audit/export", params={"format": "jsonl", "project": "shop"}).text
    entries = [json.loads(line) for line in mine.splitlines()]
    assert all(entry_hash(e["prev_hash"], e) == e["hash"] for e in entries)
    assert not any(e["object_type"] == "user" for e in entries)  # not the project's
    tampered = {**entries[0], "reason": "rewritten"}
    assert entry_hash(tampered["prev_hash"], tampered) != tampered["hash"]


def test_the_audit_page_links_the_exports_with_its_filters(ann: TestClient) -> None:
    page = ann.get("/audit", params={"project": "shop", "action": "flag:", "since": "2020-01-01"})
    assert (
        'href="/audit/export?format=csv&amp;project=shop&amp;action=flag%3A&amp;since=2020-01-01"'
        in page.text
    )
    assert 'id="export-jsonl"' in page.text


@pytest.mark.parametrize(
    ("params", "status", "named"),
    [
        ({"format": "xml", "project": "shop"}, 422, "format"),
        ({"format": "csv", "project": "shop", "since": "yesterday"}, 422, "since"),
        ({"format": "csv", "project": "nope"}, 404, ""),
    ],
)
def test_a_bad_export_request_is_an_error_page_not_a_broken_file(
    ann: TestClient, params: dict[str, str], status: int, named: str
) -> None:
    r = ann.get("/audit/export", params=params)
    assert r.status_code == status
    assert r.headers["content-type"].startswith("text/html")
    assert "content-disposition" not in r.headers
    if named:
        assert f"<code>{named}</code>" in r.text


def test_the_export_needs_a_session(app: FastAPI, world: TestClient) -> None:
    with TestClient(app, follow_redirects=False) as http:
        r = http.get("/audit/export", params={"format": "csv", "project": "shop"})
        assert r.status_code == 303
        assert r.headers["location"].startswith("/login")
