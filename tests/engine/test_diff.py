"""Which flags and segments changed between two snapshots."""

from __future__ import annotations

import pytest

from lockgate.engine import SnapshotDiff, decode, diff
from tests.engine.factories import JSON, bool_flag, snapshot_doc, string_flag


def _segment(key: str, *included: str) -> JSON:
    return {"key": key, "version": 1, "included": list(included)}


BASE = snapshot_doc(
    {"keep": string_flag("keep"), "change": string_flag("change"), "drop": string_flag("drop")},
    {
        "s-keep": _segment("s-keep", "u1"),
        "s-change": _segment("s-change"),
        "s-drop": _segment("s-drop"),
    },
    version=1,
)


def test_identical_snapshots_have_an_empty_diff() -> None:
    result = diff(decode(BASE), decode(BASE))
    assert result == SnapshotDiff()
    assert result.empty
    assert result.touched_flags == ()


def test_snapshot_version_alone_is_no_change() -> None:
    later = {**BASE, "version": 9}
    assert diff(decode(BASE), decode(later)).empty


def test_added_changed_and_removed() -> None:
    new = snapshot_doc(
        {
            "keep": string_flag("keep"),
            "change": string_flag("change", default={"variation": "b"}),
            "new-b": bool_flag("new-b"),
            "new-a": string_flag("new-a"),
        },
        {
            "s-keep": _segment("s-keep", "u1"),
            "s-change": _segment("s-change", "u2"),
            "s-new": _segment("s-new"),
        },
        version=2,
    )
    result = diff(decode(BASE), decode(new))
    assert result == SnapshotDiff(
        added_flags=("new-a", "new-b"),
        changed_flags=("change",),
        removed_flags=("drop",),
        added_segments=("s-new",),
        changed_segments=("s-change",),
        removed_segments=("s-drop",),
    )
    assert not result.empty
    assert result.touched_flags == ("change", "drop", "new-a", "new-b")


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"version": 2}, id="flag-version"),
        pytest.param({"on": False}, id="turned-off"),
        pytest.param({"client_visible": True}, id="client-visible"),
        pytest.param({"salt": "new-salt"}, id="salt"),
        pytest.param({"description": "now documented"}, id="meta-field"),
        pytest.param(
            {"variations": [{"key": "a", "value": "A"}, {"key": "b", "value": "b"}]},
            id="variation-value",
        ),
    ],
)
def test_any_content_change_is_a_change(change: JSON) -> None:
    new = snapshot_doc({**flags_of(BASE), "keep": string_flag("keep", **change)}, BASE["segments"])
    result = diff(decode(BASE), decode(new))
    assert result == SnapshotDiff(changed_flags=("keep",))


def test_default_filled_in_is_no_change() -> None:
    explicit = snapshot_doc(
        {
            **flags_of(BASE),
            "keep": string_flag("keep", on=True, bucket_by="key", targets=[], rules=[]),
        },
        BASE["segments"],
    )
    assert diff(decode(BASE), decode(explicit)).empty


def test_only_segments_changed() -> None:
    new = snapshot_doc(flags_of(BASE), {**BASE["segments"], "s-keep": _segment("s-keep")})
    result = diff(decode(BASE), decode(new))
    assert result == SnapshotDiff(changed_segments=("s-keep",))
    assert result.touched_flags == ()


def test_from_empty_everything_is_added() -> None:
    result = diff(decode(snapshot_doc()), decode(BASE))
    assert result.added_flags == ("change", "drop", "keep")
    assert result.added_segments == ("s-change", "s-drop", "s-keep")
    assert (result.changed_flags, result.removed_flags) == ((), ())


def flags_of(doc: JSON) -> dict[str, JSON]:
    flags: dict[str, JSON] = doc["flags"]
    return dict(flags)
