"""``GET /sdk/v1/stream`` against a real ``lockgate serve`` process (SQLite).

One server for the module (one-second heartbeats); every test works in projects of its
own. Every read is bounded; the only timing assertions are the documented bounds
(revocation closes a stream within a second; changes arrive within a couple of seconds).
"""

from __future__ import annotations

import copy
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.delivery.servers import ADMIN_TOKEN, Admin, LockgateServer, lockgate_server, unique
from tests.delivery.sse import SseClient, SseItem

ENV = "prod"


def _project(admin: Admin, *flags: str, envs: tuple[str, ...] = (ENV,)) -> str:
    project = unique("p")
    admin.project(project, *envs)
    for flag in flags:
        admin.flag(project, flag)
    return project


def _apply(document: dict[str, Any], event: SseItem) -> dict[str, Any]:
    """What an SDK does with an event: replace the snapshot, or merge a change into it."""
    data = event.json()
    if event.name == "snapshot":
        return dict(data)
    assert data["from"] == document["version"], "a gap: the change does not follow"
    result = copy.deepcopy(document)
    for section in ("flags", "segments"):
        for key, value in data[section].items():
            if value is None:
                result[section].pop(key, None)
            else:
                result[section][key] = value
    result["version"] = data["version"]
    return result


def _events(items: list[SseItem]) -> list[SseItem]:
    return [i for i in items if i.kind == "event"]


def test_connect_sends_the_retry_hint_then_the_full_snapshot(
    server: LockgateServer, admin: Admin
) -> None:
    project = _project(admin, "a", "b")
    key, _ = admin.sdk_key(project, ENV)
    with SseClient.open(server.url, key) as sse:
        assert sse.status == 200
        assert sse.headers["content-type"].startswith("text/event-stream")
        assert sse.headers["cache-control"] == "no-cache"
        first = sse.next()
        assert (first.kind, first.retry) == ("retry", 1000)
        snapshot = sse.next()
        assert (snapshot.kind, snapshot.name) == ("event", "snapshot")
        document = snapshot.json()
        assert snapshot.version == document["version"]
        assert document == admin.snapshot(key)
        assert set(document["flags"]) == {"a", "b"}
        assert (document["project"], document["environment"]) == (project, ENV)


def test_a_change_carries_only_the_changed_flag_and_consistent_versions(
    server: LockgateServer, admin: Admin
) -> None:
    project = _project(admin, "a", "b")
    key, _ = admin.sdk_key(project, ENV)
    with SseClient.open(server.url, key) as sse:
        snapshot = sse.next_event()
        admin.configure(project, "a", ENV, on=True)
        change = sse.next_event(timeout=5)
        assert change.name == "change"
        data = change.json()
        assert data["from"] == snapshot.version
        assert data["version"] == change.version == snapshot.version + 1
        assert list(data["flags"]) == ["a"]
        assert data["segments"] == {}
        current = admin.current(key, project, ENV)
        assert data["flags"]["a"] == current["flags"]["a"]
        assert data["flags"]["a"]["on"] is True
        assert _apply(snapshot.json(), change) == current


def test_propagation_latency_on_one_server(server: LockgateServer, admin: Admin) -> None:
    """Commit (the PATCH answered) to event received; reported, bounded generously."""
    project = _project(admin, "a")
    key, _ = admin.sdk_key(project, ENV)
    latencies: list[tuple[float, float]] = []
    with SseClient.open(server.url, key) as sse:
        sse.next_event()
        for i in range(10):
            sent = time.monotonic()
            admin.configure(project, "a", ENV, on=i % 2 == 0)
            answered = time.monotonic()
            event = sse.next_event(timeout=5)
            received = time.monotonic()
            latencies.append((received - sent, received - answered))
            assert event.name == "change"
            time.sleep(0.15)  # past the hub's reload spacing: measure single changes
    from_sent = [a for a, _ in latencies]
    from_answer = [b for _, b in latencies]
    print(  # the measurement is the point (pytest -s shows it)
        f"\nsingle server, PATCH sent -> change received: median "
        f"{statistics.median(from_sent) * 1000:.1f} ms, max {max(from_sent) * 1000:.1f} ms; "
        f"PATCH answered -> received: median {statistics.median(from_answer) * 1000:.1f} ms "
        f"(n={len(latencies)})"
    )
    assert max(from_sent) < 2.0


def test_a_burst_of_changes_is_coalesced_and_ends_in_the_right_state(
    server: LockgateServer, admin: Admin
) -> None:
    flags = [f"f{i}" for i in range(20)]
    project = _project(admin, *flags)
    key, _ = admin.sdk_key(project, ENV)
    with SseClient.open(server.url, key) as sse:
        first = sse.next_event()
        document = first.json()

        def switch_on(flag: str) -> int:
            return admin.configure(project, flag, ENV, on=True, default={"variation": "on"})

        with ThreadPoolExecutor(max_workers=len(flags)) as pool:
            list(pool.map(switch_on, flags))
        final = admin.snapshot(key, at_least=first.version + len(flags))
        assert final["version"] == first.version + len(flags)
        changes = 0
        while document["version"] < final["version"]:
            event = sse.next_event(timeout=10)
            changes += event.name == "change"
            document = _apply(document, event)
            assert event.version == document["version"]
        assert 0 < changes < len(flags)
        assert document == final
        assert all(final["flags"][f]["on"] for f in flags)


def test_resume_with_the_current_version_sends_no_snapshot(
    server: LockgateServer, admin: Admin
) -> None:
    project = _project(admin, "a")
    key, _ = admin.sdk_key(project, ENV)
    admin.configure(project, "a", ENV, on=True)
    current = admin.current(key, project, ENV)["version"]
    with SseClient.open(server.url, key, last_event_id=current) as sse:
        items = sse.items_for(1.8)  # longer than one heartbeat
    assert items[0].kind == "retry"
    assert _events(items) == []
    assert any(i.kind == "comment" and i.comment == "ping" for i in items)


def test_resume_with_an_older_version_gets_one_change_covering_the_gap(
    server: LockgateServer, admin: Admin
) -> None:
    project = _project(admin, "a", "b", "c")
    key, _ = admin.sdk_key(project, ENV)
    held = admin.current(key, project, ENV)
    admin.configure(project, "a", ENV, on=True)
    admin.configure(project, "b", ENV, on=True)
    admin.configure(project, "a", ENV, on=False)
    current = admin.current(key, project, ENV)
    assert current["version"] == held["version"] + 3
    with SseClient.open(server.url, key, last_event_id=held["version"]) as sse:
        change = sse.next_event()
        assert change.name == "change"
        data = change.json()
        assert (data["from"], data["version"]) == (held["version"], current["version"])
        assert sorted(data["flags"]) == ["a", "b"]
        assert _apply(held, change) == current
        assert _events(sse.items_for(1.2)) == []  # nothing else to say


@pytest.mark.parametrize("last_event_id", ["future", "0", "not-a-number", "-1", ""])
def test_resume_from_an_unusable_version_gets_the_snapshot(
    server: LockgateServer, admin: Admin, last_event_id: str
) -> None:
    project = _project(admin, "a")
    key, _ = admin.sdk_key(project, ENV)
    admin.configure(project, "a", ENV, on=True)
    current = admin.current(key, project, ENV)
    if last_event_id == "future":
        last_event_id = str(current["version"] + 100)
    # "0": before the environment's first recorded change, so what changed is unknown.
    with SseClient.open(server.url, key, last_event_id=last_event_id) as sse:
        event = sse.next_event()
        assert (event.name, event.version) == ("snapshot", current["version"])
        assert event.json() == current


def test_an_idle_stream_gets_heartbeats(server: LockgateServer, admin: Admin) -> None:
    project = _project(admin, "a")
    key, _ = admin.sdk_key(project, ENV)
    with SseClient.open(server.url, key) as sse:
        sse.next_event()
        items = sse.items_for(3.5)  # heartbeats every second here
    assert _events(items) == []
    assert sum(i.kind == "comment" and i.comment == "ping" for i in items) >= 2


def test_revoking_the_key_closes_its_stream_within_a_second(
    server: LockgateServer, admin: Admin
) -> None:
    project = _project(admin, "a")
    key, prefix = admin.sdk_key(project, ENV)
    other, _ = admin.sdk_key(project, ENV)
    with SseClient.open(server.url, key) as sse, SseClient.open(server.url, other) as kept:
        sse.next_event()
        kept.next_event()
        admin.revoke(project, ENV, prefix)
        revoked = time.monotonic()
        items = sse.wait_closed(timeout=3.0)
        elapsed = time.monotonic() - revoked
        print(f"\nrevoked -> stream closed: {elapsed * 1000:.0f} ms")
        assert elapsed < 1.5
        assert _events(items) == []  # not one more event after the revocation
        with SseClient.open(server.url, key) as again:
            assert again.status == 401
            assert again.json()["code"] == "unauthenticated"
        refused = admin.http.get("/sdk/v1/snapshot", headers={"Authorization": f"Bearer {key}"})
        assert refused.status_code == 401
        # The environment's other key is untouched.
        admin.configure(project, "a", ENV, on=True)
        assert kept.next_event().name == "change"


def test_a_key_never_sees_another_environments_data(server: LockgateServer, admin: Admin) -> None:
    mine = _project(admin, "alpha", envs=(ENV, "staging"))
    theirs = _project(admin, "beta")
    admin.configure(mine, "alpha", ENV, on=True)
    admin.configure(mine, "alpha", "staging", on=False, salt="staging-only")
    key, _ = admin.sdk_key(mine, ENV)
    their_key, _ = admin.sdk_key(theirs, ENV)
    with SseClient.open(server.url, key) as sse:
        snapshot = sse.next_event()
        document = snapshot.json()
        assert (document["project"], document["environment"]) == (mine, ENV)
        assert list(document["flags"]) == ["alpha"]
        assert document["flags"]["alpha"]["on"] is True
        assert "staging-only" not in snapshot.data
        # Changes elsewhere — the same project's staging, another project — are not sent.
        admin.configure(mine, "alpha", "staging", on=True)
        admin.configure(theirs, "beta", ENV, on=True)
        assert _events(sse.items_for(1.5)) == []
        admin.configure(mine, "alpha", ENV, on=False)
        change = sse.next_event()
        assert list(change.json()["flags"]) == ["alpha"]
        assert change.json()["flags"]["alpha"]["on"] is False
    their_document = admin.current(their_key, theirs, ENV)
    assert list(their_document["flags"]) == ["beta"]
    assert their_document["project"] == theirs


def test_segment_changes_arrive_in_segments(server: LockgateServer, admin: Admin) -> None:
    project = _project(admin, "a")
    key, _ = admin.sdk_key(project, ENV)
    with SseClient.open(server.url, key) as sse:
        sse.next_event()
        version = admin.segment(project, "beta-users", included=["u1"])
        created = sse.next_event().json()
        assert created["flags"] == {}
        assert created["segments"]["beta-users"]["included"] == ["u1"]
        version = admin.update_segment(project, "beta-users", version, included=["u1", "u2"])
        updated = sse.next_event().json()
        assert updated["segments"]["beta-users"]["included"] == ["u1", "u2"]
        admin.delete_segment(project, "beta-users", version)
        deleted = sse.next_event().json()
        assert deleted == {
            "from": updated["version"],
            "version": updated["version"] + 1,
            "flags": {},
            "segments": {"beta-users": None},
        }


def test_an_archived_flag_arrives_as_null(server: LockgateServer, admin: Admin) -> None:
    project = _project(admin, "a", "b")
    key, _ = admin.sdk_key(project, ENV)
    with SseClient.open(server.url, key) as sse:
        snapshot = sse.next_event()
        admin.archive(project, "a")
        change = sse.next_event()
        assert change.json()["flags"] == {"a": None}
        current = admin.current(key, project, ENV)
        assert _apply(snapshot.json(), change) == current
        assert "a" not in current["flags"]


def test_client_keys_and_other_credentials_cannot_stream(
    server: LockgateServer, admin: Admin
) -> None:
    project = _project(admin, "a")
    client_key, _ = admin.sdk_key(project, ENV, kind="client")
    for credential, status in [(client_key, 403), ("lgs_nope_nope", 401), ("", 401)]:
        with SseClient.open(server.url, credential) as sse:
            assert sse.status == status
            assert "application/problem+json" in sse.headers["content-type"]
    with SseClient.open(server.url, ADMIN_TOKEN) as sse:
        assert sse.status == 401  # a management token is not an SDK key


@pytest.mark.fault
def test_stopping_the_server_ends_open_streams(tmp_path: Path) -> None:
    """SIGTERM with SDKs connected: their streams end and the process exits promptly.

    (The ASGI server waits for open responses before shutting the application down; a
    stream never ends by itself, so without the hub's signal hook this waited forever.)
    """
    with lockgate_server(tmp_path / "data") as running:
        admin = Admin.connect(running.url)
        try:
            project = _project(admin, "a")
            key, _ = admin.sdk_key(project, ENV)
        finally:
            admin.close()
        with SseClient.open(running.url, key) as sse, SseClient.open(running.url, key) as sse2:
            sse.next_event()
            sse2.next_event()
            code = running.stop(timeout=8.0)
            assert code not in (None, -9), "had to be killed:\n" + running.log_text()
            sse.wait_closed(timeout=1.0)
            sse2.wait_closed(timeout=1.0)


def test_cached_keys_stream_past_the_application_with_the_same_events(
    server: LockgateServer, admin: Admin
) -> None:
    project = _project(admin, "a")
    key, _ = admin.sdk_key(project, ENV)
    with SseClient.open(server.url, key) as routed:  # key not cached yet: the application
        routed_snapshot = routed.next_event()
        with SseClient.open(server.url, key) as direct:  # cached now: the fast path
            direct_snapshot = direct.next_event()
            assert "x-request-id" in routed.headers
            assert "x-request-id" not in direct.headers  # it skipped the application
            assert direct.headers["content-type"] == routed.headers["content-type"]
            assert direct_snapshot.json() == routed_snapshot.json()
            admin.configure(project, "a", ENV, on=True)
            assert direct.next_event().json() == routed.next_event().json()


def test_changes_name_the_flags_whose_variations_did_not_change(
    server: LockgateServer, admin: Admin
) -> None:
    project = _project(admin, "a", "b")
    key, _ = admin.sdk_key(project, ENV)
    with SseClient.open(server.url, key) as sse:
        sse.next_event()
        admin.configure(project, "a", ENV, on=True)
        switched = sse.next_event(timeout=5).json()
        assert switched["same_variations"] == ["a"]
        url = f"/api/v1/projects/{project}/flags/b"
        version = admin.http.get(url).headers["etag"]
        variations = [{"key": "on", "value": True}, {"key": "off", "value": False, "name": "Off"}]
        response = admin.http.patch(
            url, json={"variations": variations}, headers={"If-Match": version}
        )
        assert response.status_code == 200, response.text
        redefined = sse.next_event(timeout=5).json()
        assert "b" in redefined["flags"]
        assert "b" not in redefined.get("same_variations", [])
