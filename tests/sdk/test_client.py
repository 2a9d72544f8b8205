"""The SDK's local client: construction, typed helpers, updates and thread safety."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lockgate.engine import FlagKind, Snapshot, decode
from lockgate.sdk import ErrorCode, EvaluationDetail, LockgateClient, Mode, Reason, SnapshotError
from tests.engine.factories import JSON, bool_flag, flags_doc, snapshot_doc, string_flag

CONTEXT = {"key": "u1"}


def typed_doc(version: int = 1) -> JSON:
    """One flag of every kind, each serving a fixed value."""
    return flags_doc(
        bool_flag("bool", version=2),
        string_flag("string", default={"variation": "b"}),
        string_flag(
            "number",
            kind="number",
            variations=[{"key": "n", "value": 2.5}],
            default={"variation": "n"},
        ),
        string_flag(
            "json",
            kind="json",
            variations=[{"key": "j", "value": {"limit": 3}}],
            default={"variation": "j"},
        ),
        string_flag(
            "mode",
            kind="mode",
            variations=[{"key": "m", "value": "draft_only"}],
            default={"variation": "m"},
            client_visible=True,
        ),
        version=version,
    )


@pytest.fixture
def client() -> LockgateClient:
    return LockgateClient.from_snapshot(typed_doc())


# -- construction ------------------------------------------------------------------------


def test_from_snapshot_dict(client: LockgateClient) -> None:
    assert client.ready
    assert client.snapshot.version == 1
    assert client.variation("string", CONTEXT) == "b"


def test_from_snapshot_object() -> None:
    snapshot = decode(typed_doc(version=5))
    client = LockgateClient.from_snapshot(snapshot)
    assert client.snapshot is snapshot
    assert client.variation("bool", CONTEXT) is True


def test_from_file(tmp_path: Path) -> None:
    path = tmp_path / "snapshot.json"
    path.write_text(json.dumps(typed_doc(version=3)), encoding="utf-8")
    client = LockgateClient.from_file(path)
    assert client.snapshot.version == 3
    assert client.string_variation("string", CONTEXT, "x") == "b"
    assert LockgateClient.from_file(str(path)).snapshot.version == 3


def test_from_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.json"
    with pytest.raises(SnapshotError) as caught:
        LockgateClient.from_file(path)
    [problem] = caught.value.problems
    assert problem.path == "$"
    assert problem.message == f"cannot read {path}: No such file or directory"


def test_from_file_with_invalid_json(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"format": ', encoding="utf-8")
    with pytest.raises(SnapshotError) as caught:
        LockgateClient.from_file(path)
    [problem] = caught.value.problems
    assert problem.path == "$"
    assert problem.message.startswith(f"{path} is not valid JSON: ")


def test_from_file_with_an_invalid_snapshot(tmp_path: Path) -> None:
    path = tmp_path / "invalid.json"
    path.write_text(json.dumps(flags_doc(string_flag(off_variation="zzz"))), encoding="utf-8")
    with pytest.raises(SnapshotError) as caught:
        LockgateClient.from_file(path)
    assert [p.path for p in caught.value.problems] == ["flags.f.off_variation"]


# -- not ready ---------------------------------------------------------------------------


def test_not_ready_client_serves_defaults() -> None:
    client = LockgateClient()
    assert not client.ready
    assert client.detail("any", CONTEXT, "d").to_dict() == {
        "value": "d",
        "variation": None,
        "reason": "ERROR",
        "rule_id": None,
        "error_code": "PROVIDER_NOT_READY",
        "flag_version": None,
    }
    assert client.variation("any", CONTEXT, 5) == 5
    assert client.bool_variation("any", CONTEXT, True) is True
    assert client.string_variation("any", CONTEXT, "s") == "s"
    assert client.number_variation("any", CONTEXT, 1.5) == 1.5
    assert client.json_variation("any", CONTEXT, {"a": 1}) == {"a": 1}
    assert client.mode("any", CONTEXT) is Mode.OFF
    assert client.mode("any", CONTEXT, Mode.FALLBACK) is Mode.FALLBACK
    assert client.mode_detail("any", CONTEXT).error_code is ErrorCode.PROVIDER_NOT_READY
    assert client.typed_detail("any", CONTEXT, 0, FlagKind.NUMBER).value == 0
    assert client.all_details(CONTEXT) == {}


# -- typed helpers -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "helper", "default", "expected"),
    [
        pytest.param("bool", "bool_variation", False, True, id="bool"),
        pytest.param("string", "string_variation", "x", "b", id="string"),
        pytest.param("number", "number_variation", 0.0, 2.5, id="number"),
        pytest.param("json", "json_variation", None, {"limit": 3}, id="json"),
        pytest.param("string", "bool_variation", False, False, id="string-as-bool"),
        pytest.param("bool", "string_variation", "x", "x", id="bool-as-string"),
        pytest.param("json", "number_variation", -1.0, -1.0, id="json-as-number"),
        pytest.param("mode", "json_variation", [], [], id="mode-as-json"),
        pytest.param("number", "bool_variation", True, True, id="number-as-bool"),
        pytest.param("nope", "string_variation", "x", "x", id="not-found"),
    ],
)
def test_typed_helpers(
    client: LockgateClient, key: str, helper: str, default: Any, expected: Any
) -> None:
    assert getattr(client, helper)(key, CONTEXT, default) == expected


@pytest.mark.parametrize(
    ("key", "kind", "error"),
    [
        pytest.param("bool", FlagKind.BOOLEAN, None, id="bool-ok"),
        pytest.param("bool", FlagKind.STRING, ErrorCode.TYPE_MISMATCH, id="bool-as-string"),
        pytest.param("mode", FlagKind.STRING, ErrorCode.TYPE_MISMATCH, id="mode-as-string"),
        pytest.param("nope", FlagKind.BOOLEAN, ErrorCode.FLAG_NOT_FOUND, id="not-found"),
    ],
)
def test_typed_detail(
    client: LockgateClient, key: str, kind: FlagKind, error: ErrorCode | None
) -> None:
    got = client.typed_detail(key, CONTEXT, "d", kind)
    assert got.error_code is error
    if error is not None:
        assert (got.value, got.variation, got.reason) == ("d", None, Reason.ERROR)


def test_mode_returns_a_mode(client: LockgateClient) -> None:
    mode = client.mode("mode", CONTEXT)
    assert mode is Mode.DRAFT_ONLY
    assert mode.allows_drafts
    assert not mode.allows_writes
    assert client.mode_detail("mode", CONTEXT).to_dict() == {
        "value": "draft_only",
        "variation": "m",
        "reason": "FALLTHROUGH",
        "rule_id": None,
        "error_code": None,
        "flag_version": 1,
    }


@pytest.mark.parametrize(
    ("key", "default", "error"),
    [
        pytest.param("string", Mode.OBSERVE, ErrorCode.TYPE_MISMATCH, id="string-flag"),
        pytest.param("nope", Mode.FULL, ErrorCode.FLAG_NOT_FOUND, id="not-found"),
        pytest.param("nope", Mode.OFF, ErrorCode.FLAG_NOT_FOUND, id="default-off"),
    ],
)
def test_mode_falls_back_to_the_default(
    client: LockgateClient, key: str, default: Mode, error: ErrorCode
) -> None:
    assert client.mode(key, CONTEXT, default) is default
    got = client.mode_detail(key, CONTEXT, default)
    assert (got.value, got.error_code) == (default.value, error)


def test_detail_and_variation(client: LockgateClient) -> None:
    assert client.detail("bool", CONTEXT).to_dict() == {
        "value": True,
        "variation": "on",
        "reason": "FALLTHROUGH",
        "rule_id": None,
        "error_code": None,
        "flag_version": 2,
    }
    assert client.variation("nope", CONTEXT, "d") == "d"
    assert client.detail("nope", CONTEXT, "d").error_code is ErrorCode.FLAG_NOT_FOUND


def test_invalid_context(client: LockgateClient) -> None:
    context: Any = None
    got = client.detail("bool", context, "d")
    assert (got.value, got.error_code) == ("d", ErrorCode.INVALID_CONTEXT)


# -- updates -----------------------------------------------------------------------------


def test_update_rejects_an_invalid_snapshot_and_keeps_serving(client: LockgateClient) -> None:
    bad = flags_doc(string_flag("string", default={"variation": "zzz"}), version=2)
    with pytest.raises(SnapshotError) as caught:
        client.update(bad)
    assert [p.path for p in caught.value.problems] == ["flags.string.default.variation"]
    assert client.snapshot.version == 1
    assert client.variation("string", CONTEXT) == "b"


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param({**snapshot_doc(version=2), "format": "other/9"}, id="bad-envelope"),
        pytest.param(flags_doc(string_flag("string", rules=7), version=2), id="broken-flag"),
        pytest.param(
            decode(flags_doc(string_flag("x", off_variation="q"), version=2)), id="object"
        ),
    ],
)
def test_update_rejects_every_kind_of_invalid_snapshot(
    client: LockgateClient, bad: JSON | Snapshot
) -> None:
    with pytest.raises(SnapshotError):
        client.update(bad)
    assert client.snapshot.version == 1
    assert client.bool_variation("bool", CONTEXT, False) is True


def test_update_to_a_newer_version(client: LockgateClient) -> None:
    assert client.update(flags_doc(string_flag("string"), version=2)) is True
    assert client.snapshot.version == 2
    assert client.variation("string", CONTEXT) == "a"
    assert client.detail("bool", CONTEXT).error_code is ErrorCode.FLAG_NOT_FOUND


def test_older_version_is_ignored(client: LockgateClient) -> None:
    client.update(typed_doc(version=10))
    seen: list[Snapshot] = []
    client.on_update(seen.append)
    assert client.update(flags_doc(string_flag("string"), version=9)) is False
    assert client.snapshot.version == 10
    assert client.variation("string", CONTEXT) == "b"
    assert seen == []


def test_same_version_replaces(client: LockgateClient) -> None:
    assert client.update(flags_doc(string_flag("string"), version=1)) is True
    assert client.variation("string", CONTEXT) == "a"


def test_not_ready_client_accepts_any_version() -> None:
    client = LockgateClient()
    assert client.update(typed_doc(version=0)) is True
    assert client.ready


def test_listeners_are_called_after_each_successful_update(client: LockgateClient) -> None:
    first: list[int] = []
    second: list[int] = []
    client.on_update(lambda s: first.append(s.version))
    client.on_update(lambda s: second.append(s.version))
    client.update(typed_doc(version=2))
    with pytest.raises(SnapshotError):
        client.update(flags_doc(string_flag(off_variation="zzz"), version=3))
    client.update(typed_doc(version=1))  # older: ignored
    client.update(typed_doc(version=4))
    assert first == second == [2, 4]


def test_listener_sees_the_new_snapshot_already_serving(client: LockgateClient) -> None:
    served: list[str] = []
    client.on_update(lambda s: served.append(client.variation("string", CONTEXT)))
    client.update(flags_doc(string_flag("string"), version=2))
    assert served == ["a"]


# -- all_details -------------------------------------------------------------------------


def test_all_details(client: LockgateClient) -> None:
    every = client.all_details(CONTEXT)
    assert {k: d.value for k, d in every.items()} == {
        "bool": True,
        "string": "b",
        "number": 2.5,
        "json": {"limit": 3},
        "mode": "draft_only",
    }
    assert all(isinstance(d, EvaluationDetail) for d in every.values())


def test_all_details_client_visible_only(client: LockgateClient) -> None:
    visible = client.all_details(CONTEXT, client_visible_only=True)
    assert {k: d.value for k, d in visible.items()} == {"mode": "draft_only"}


# -- thread safety -----------------------------------------------------------------------

FLAG_KEYS = [f"flag-{i}" for i in range(6)]


def uniform_doc(value: str, version: int) -> JSON:
    """Every flag serves ``value``; each snapshot has its own flag versions too."""
    flags = [
        string_flag(
            key,
            version=version,
            variations=[{"key": value, "value": value}],
            default={"variation": value},
        )
        for key in FLAG_KEYS
    ]
    return flags_doc(*flags, version=version)


@pytest.fixture
def fast_switching() -> Iterator[None]:
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


@pytest.mark.usefixtures("fast_switching")
def test_readers_never_see_a_mix_while_a_writer_swaps_snapshots() -> None:
    client = LockgateClient.from_snapshot(uniform_doc("a", 0))
    stop = threading.Event()
    errors: list[BaseException] = []
    mixes: list[dict[str, Any]] = []
    iterations = [0] * 4

    def read(index: int) -> None:
        try:
            while True:
                done = stop.is_set()
                details = client.all_details({"key": "u1"})
                values = {d.value for d in details.values()}
                versions = {d.flag_version for d in details.values()}
                if len(values) != 1 or len(versions) != 1 or len(details) != len(FLAG_KEYS):
                    mixes.append({k: d.to_dict() for k, d in details.items()})
                single = client.detail(FLAG_KEYS[index], {"key": "u1"}, "dflt")
                if single.value not in ("a", "b") or single.error_code is not None:
                    mixes.append({"single": single.to_dict()})
                iterations[index] += 1
                if done:
                    return
        except BaseException as exc:  # reported below, in the main thread
            errors.append(exc)

    readers = [threading.Thread(target=read, args=(i,)) for i in range(4)]
    for reader in readers:
        reader.start()
    try:
        for version in range(1, 201):
            assert client.update(uniform_doc("b" if version % 2 else "a", version)) is True
    finally:
        stop.set()
        for reader in readers:
            reader.join(timeout=60)
    assert not any(reader.is_alive() for reader in readers)
    assert errors == []
    assert mixes == []
    assert all(count > 0 for count in iterations)
    assert client.snapshot.version == 200
    assert {d.value for d in client.all_details({}).values()} == {"a"}
