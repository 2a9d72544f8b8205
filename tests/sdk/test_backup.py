"""The backup file: read at start, written atomically, coalesced."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

from lockgate.engine import decode, encode
from lockgate.sdk.backup import BackupWriter, read_backup, write_atomically
from tests.engine.factories import flags_doc, string_flag
from tests.sdk.delivery_server import eventually

LOG = logging.getLogger("lockgate.sdk.test")


def doc(version: int) -> dict[str, object]:
    return flags_doc(string_flag("f", default={"variation": "b"}), version=version)


def test_read_a_valid_backup(tmp_path: Path) -> None:
    path = tmp_path / "backup.json"
    path.write_text(json.dumps(doc(4)), encoding="utf-8")
    snapshot = read_backup(path, LOG)
    assert snapshot is not None
    assert snapshot.version == 4


@pytest.mark.parametrize(
    "content",
    [
        pytest.param("{not json", id="not-json"),
        pytest.param('{"format": "other/1"}', id="bad-envelope"),
        pytest.param(json.dumps(flags_doc(string_flag(off_variation="zz"))), id="invalid"),
        pytest.param("", id="empty"),
    ],
)
def test_a_corrupt_backup_is_logged_and_ignored(
    tmp_path: Path, content: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "backup.json"
    path.write_text(content, encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger=LOG.name):
        assert read_backup(path, LOG) is None
    assert f"ignoring the backup file {path}" in caplog.text


def test_a_missing_backup_is_not_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger=LOG.name):
        assert read_backup(tmp_path / "absent.json", LOG) is None
    assert caplog.text == ""


def test_write_atomically_replaces_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "backup.json"
    path.write_text("old", encoding="utf-8")
    write_atomically(path, "new")
    assert path.read_text(encoding="utf-8") == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["backup.json"]
    assert path.stat().st_mode & 0o077 == 0  # not readable by others: it holds targeting


def test_a_failed_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "backup.json"
    path.write_text("old", encoding="utf-8")

    def failing_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        write_atomically(path, "new")
    assert path.read_text(encoding="utf-8") == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["backup.json"]


def test_writer_coalesces_to_one_write_per_interval(tmp_path: Path) -> None:
    path = tmp_path / "backup.json"
    writer = BackupWriter(path, LOG, min_interval=60.0)
    writer.offer(decode(doc(1)))
    wait_for_file(path, version=1)
    eventually(lambda: writer.writes == 1)
    for version in range(2, 30):
        writer.offer(decode(doc(version)))
    assert writer.writes == 1  # the rest waits for the interval...
    writer.close(timeout=5.0)  # ...or for close, which writes the latest at once
    assert writer.writes == 2
    assert json.loads(path.read_text(encoding="utf-8")) == encode(decode(doc(29)))
    writer.offer(decode(doc(99)))  # after close: ignored
    assert json.loads(path.read_text(encoding="utf-8"))["version"] == 29


def test_writer_writes_again_after_the_interval(tmp_path: Path) -> None:
    path = tmp_path / "backup.json"
    writer = BackupWriter(path, LOG, min_interval=0.05)
    writer.offer(decode(doc(1)))
    wait_for_file(path, version=1)
    writer.offer(decode(doc(2)))
    wait_for_file(path, version=2)
    writer.close(timeout=5.0)
    assert writer.writes == 2


def test_write_errors_are_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "missing-dir" / "backup.json"
    writer = BackupWriter(path, LOG, min_interval=0.0)
    with caplog.at_level(logging.WARNING, logger=LOG.name):
        writer.offer(decode(doc(1)))
        writer.close(timeout=5.0)
    assert writer.writes == 0
    assert "cannot write the backup file" in caplog.text


def wait_for_file(path: Path, version: int) -> None:
    def holds() -> bool:
        try:
            return bool(json.loads(path.read_text(encoding="utf-8"))["version"] == version)
        except (OSError, ValueError):
            return False

    eventually(holds)
