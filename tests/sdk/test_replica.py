"""Applying snapshot and change events to the data being served."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lockgate.engine import ErrorCode, Snapshot
from lockgate.sdk import LockgateClient
from lockgate.sdk.replica import ProtocolError, Replica, VersionGapError
from tests.engine.factories import bool_flag, flags_doc, snapshot_doc, string_flag

CTX = {"key": "u1"}
SEGMENT = {"key": "beta", "version": 1, "included": ["u1"]}


def base(version: int = 5) -> dict[str, Any]:
    return snapshot_doc(
        {"f": string_flag("f"), "g": bool_flag("g")}, {"beta": SEGMENT}, version=version
    )


@pytest.fixture
def replica() -> tuple[LockgateClient, Replica, list[Snapshot]]:
    client = LockgateClient()
    applied: list[Snapshot] = []
    replica = Replica(client, applied.append)
    assert replica.apply_snapshot(json.dumps(base()))
    return client, replica, applied


def change(start: int, version: int, **parts: Any) -> str:
    return json.dumps({"from": start, "version": version, **parts})


def test_snapshot_then_change(replica: tuple[LockgateClient, Replica, list[Snapshot]]) -> None:
    client, rep, applied = replica
    served_b = string_flag("f", version=2, default={"variation": "b"})
    assert rep.apply_change(change(5, 6, flags={"f": served_b, "g": None}, segments={}))
    assert rep.version == 6
    assert client.snapshot.version == 6
    assert client.variation("f", CTX) == "b"
    assert client.detail("g", CTX).error_code is ErrorCode.FLAG_NOT_FOUND
    assert set(client.snapshot.segments) == {"beta"}  # untouched parts are kept
    assert [s.version for s in applied] == [5, 6]


def test_change_replaces_and_removes_segments(
    replica: tuple[LockgateClient, Replica, list[Snapshot]],
) -> None:
    client, rep, _ = replica
    new = {"key": "gamma", "version": 1, "excluded": ["u2"]}
    assert rep.apply_change(change(5, 6, segments={"beta": None, "gamma": new}))
    assert set(client.snapshot.segments) == {"gamma"}
    assert set(client.snapshot.flags) == {"f", "g"}


@pytest.mark.parametrize(("start", "version"), [(5, 5), (4, 5), (3, 4), (7, 2)])
def test_stale_and_duplicate_changes_are_ignored(
    replica: tuple[LockgateClient, Replica, list[Snapshot]], start: int, version: int
) -> None:
    client, rep, applied = replica
    assert not rep.apply_change(change(start, version, flags={"f": None}))
    assert client.snapshot.version == 5
    assert "f" in client.snapshot.flags
    assert len(applied) == 1


@pytest.mark.parametrize("version", [4, 5])
def test_stale_and_duplicate_snapshots_are_ignored(
    replica: tuple[LockgateClient, Replica, list[Snapshot]], version: int
) -> None:
    client, rep, _ = replica
    assert not rep.apply_snapshot(json.dumps(flags_doc(version=version)))
    assert set(client.snapshot.flags) == {"f", "g"}


def test_a_gap_raises(replica: tuple[LockgateClient, Replica, list[Snapshot]]) -> None:
    client, rep, _ = replica
    with pytest.raises(VersionGapError, match="from version 6 to 8; holding 5"):
        rep.apply_change(change(6, 8, flags={"f": None}))
    assert client.snapshot.version == 5


def test_a_change_without_data_from_the_server_is_a_gap() -> None:
    client = LockgateClient(base(9))  # bootstrap data: never resumed from
    rep = Replica(client)
    assert rep.resume_version() is None
    with pytest.raises(VersionGapError):
        rep.apply_change(change(9, 10, flags={}))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param("{nope", "not valid JSON", id="bad-json"),
        pytest.param("[1]", "not a JSON object", id="not-object"),
        pytest.param(change(5, 6, flags=[1]), "must map keys", id="flags-not-object"),
        pytest.param(change(5, 6, flags={"f": 3}), "must map keys", id="flag-not-object"),
        pytest.param(json.dumps({"from": 5}), "'version' must be", id="no-version"),
        pytest.param(json.dumps({"from": "5", "version": 6}), "'from' must be", id="bad-from"),
        pytest.param(json.dumps({"from": 5, "version": True}), "'version' must", id="bool"),
        pytest.param(
            change(5, 6, flags={"f": string_flag("f", off_variation="zz")}),
            "invalid snapshot",
            id="invalid-result",
        ),
        pytest.param(
            change(5, 6, flags={"x": string_flag("other")}), "invalid snapshot", id="key-mismatch"
        ),
    ],
)
def test_malformed_changes_raise_and_change_nothing(
    replica: tuple[LockgateClient, Replica, list[Snapshot]], data: str, message: str
) -> None:
    client, rep, applied = replica
    with pytest.raises(ProtocolError, match=message):
        rep.apply_change(data)
    assert rep.version == 5
    assert client.snapshot.version == 5
    assert client.variation("f", CTX) == "a"
    assert len(applied) == 1


@pytest.mark.parametrize(
    "data",
    [
        pytest.param("", id="empty"),
        pytest.param(json.dumps({**base(6), "format": "x/1"}), id="bad-envelope"),
        pytest.param(json.dumps(flags_doc(string_flag(rules=7), version=6)), id="broken-flag"),
        pytest.param(json.dumps({**base(6), "version": -1}), id="negative-version"),
    ],
)
def test_malformed_snapshots_raise(
    replica: tuple[LockgateClient, Replica, list[Snapshot]], data: str
) -> None:
    client, rep, _ = replica
    with pytest.raises(ProtocolError):
        rep.apply_snapshot(data)
    assert client.snapshot.version == 5


def test_first_server_snapshot_replaces_newer_local_data() -> None:
    client = LockgateClient(base(50))  # e.g. a backup from before the server was reset
    rep = Replica(client)
    assert rep.apply_snapshot(json.dumps(flags_doc(string_flag("only"), version=2)))
    assert client.snapshot.version == 2
    assert set(client.snapshot.flags) == {"only"}


def test_full_resync_accepts_any_snapshot_and_stops_resuming(
    replica: tuple[LockgateClient, Replica, list[Snapshot]],
) -> None:
    client, rep, _ = replica
    rep.full_resync = True
    assert rep.resume_version() is None
    assert rep.apply_snapshot(json.dumps(flags_doc(string_flag("h"), version=3)))
    assert (rep.version, rep.full_resync, rep.resume_version()) == (3, False, 3)
    assert set(client.snapshot.flags) == {"h"}


def test_unchanged_variations_are_shared_and_changed_ones_decoded(
    replica: tuple[LockgateClient, Replica, list[Snapshot]],
) -> None:
    client, rep, _ = replica
    before = client.snapshot.flags["f"].variations
    switched = string_flag("f", version=2, default={"variation": "b"})
    assert rep.apply_change(change(5, 6, flags={"f": switched}))
    assert client.snapshot.flags["f"].variations is before
    assert client.variation("f", CTX) == "b"
    renamed = string_flag("f", version=3, default={"variation": "b"})
    renamed["variations"] = [{"key": "a", "value": "A"}, {"key": "b", "value": "B"}]
    assert rep.apply_change(change(6, 7, flags={"f": renamed}))
    assert client.snapshot.flags["f"].variations is not before
    assert client.variation("f", CTX) == "B"


def test_changed_variations_are_still_checked(
    replica: tuple[LockgateClient, Replica, list[Snapshot]],
) -> None:
    client, rep, _ = replica
    wrong_type = string_flag("f", version=2)
    wrong_type["variations"] = [{"key": "a", "value": 1}, {"key": "b", "value": "b"}]
    with pytest.raises(ProtocolError, match=r"variations\[0\]\.value"):
        rep.apply_change(change(5, 6, flags={"f": wrong_type}))
    retyped = string_flag("f", version=2)
    retyped["kind"] = "boolean"  # same variations, another kind: checked again
    with pytest.raises(ProtocolError, match=r"variations\[0\]\.value"):
        rep.apply_change(change(5, 6, flags={"f": retyped}))
    assert client.snapshot.version == 5


def test_the_servers_word_on_unchanged_variations_is_taken(
    replica: tuple[LockgateClient, Replica, list[Snapshot]],
) -> None:
    client, rep, _ = replica
    before = client.snapshot.flags["f"].variations
    switched = string_flag("f", version=2, default={"variation": "b"})
    assert rep.apply_change(change(5, 6, flags={"f": switched}, same_variations=["f", "gone"]))
    assert client.snapshot.flags["f"].variations is before
    assert client.variation("f", CTX) == "b"
    odd = string_flag("f", version=3)
    assert rep.apply_change(change(6, 7, flags={"f": odd}, same_variations="f"))  # ignored
    assert client.snapshot.flags["f"].variations is before  # compared instead: still equal


def test_a_change_carries_the_whole_map_of_tracked_metrics(
    replica: tuple[LockgateClient, Replica, list[Snapshot]],
) -> None:
    client, rep, _ = replica
    metrics = {"errors": {"behaviors": ["f"]}, "cost": {"behaviors": ["g"], "cohort": "account"}}
    assert rep.apply_change(change(5, 6, metrics=metrics))
    assert client.snapshot.metrics["cost"].cohort == "account"
    assert client.snapshot.metrics["errors"].behaviors == ("f",)
    assert rep.apply_change(change(6, 7, flags={"g": bool_flag("g", version=2)}, metrics=metrics))
    assert set(client.snapshot.metrics) == {"errors", "cost"}
    assert rep.apply_change(change(7, 8))  # no metrics: none is bound any more
    assert client.snapshot.metrics == {}
