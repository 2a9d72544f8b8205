"""Anchoring: the checkpoint cadence, the stored signing key, and the anchor file that
catches a database owner's rewrite of the newest entries (docs/audit.md)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from sqlalchemy import text

from lockgate.store import checkpoints
from lockgate.store.anchors import AnchorFile, AnchorSettingError, check_anchor_path
from lockgate.store.audit import read_entries
from lockgate.store.checkpoints import Signer, read_checkpoint_file
from lockgate.store.db import Database
from lockgate.store.verify import VerifyReport, verify_database
from tests.store.auditing import append_entries, drop_append_only, execute, rewrite_newest

SIGNER = Signer.generate()


def _kinds(report: VerifyReport) -> list[tuple[int, str]]:
    return [(p.seq, p.kind) for p in report.problems]


def _verify(database: Database, every: int = 5, anchors: Path | None = None) -> VerifyReport:
    external = read_checkpoint_file(anchors) if anchors is not None else None
    return verify_database(
        database,
        public_key=SIGNER.public_key,
        external_checkpoints=external,
        checkpoint_every=every,
    )


# -- cadence ------------------------------------------------------------------------------


def test_the_expected_cadence_verifies(database: Database) -> None:
    append_entries(database, 12, signer=SIGNER, every_n=5)
    report = _verify(database)
    assert report.ok, report.problems
    assert report.checkpoints_checked == 2


@pytest.mark.parametrize(
    ("deleted", "expected"),
    [
        pytest.param(5, (5, "checkpoint_missing"), id="first"),
        pytest.param(10, (10, "checkpoint_missing"), id="newest"),
    ],
)
def test_a_deleted_checkpoint_is_tampering(
    database: Database, deleted: int, expected: tuple[int, str]
) -> None:
    append_entries(database, 12, signer=SIGNER, every_n=5)
    drop_append_only(database)
    execute(database, "DELETE FROM audit_checkpoints WHERE seq = :seq", seq=deleted)
    assert _verify(database, every=0).ok  # without the cadence nothing shows it
    assert _kinds(_verify(database)) == [expected]


def test_a_timed_checkpoint_between_does_not_disturb_the_cadence(database: Database) -> None:
    entries = append_entries(database, 7, signer=SIGNER, every_n=5)
    with database.write() as conn:
        checkpoints.write_checkpoint(conn, SIGNER, 7, entries[-1].hash, entries[-1].ts)
    append_entries(database, 5, signer=SIGNER, every_n=5, start=8)
    assert _verify(database).ok


# -- the stored signing key -----------------------------------------------------------------


def test_the_signing_key_is_recorded_once_and_append_only(database: Database) -> None:
    append_entries(database, 10, signer=SIGNER, every_n=5)
    with database.read() as conn:
        rows = conn.execute(text("SELECT key_id, public_key_pem FROM audit_signing_keys")).all()
    assert [(r.key_id, r.public_key_pem) for r in rows] == [(SIGNER.key_id, SIGNER.public_key_pem)]
    with pytest.raises(Exception, match="append-only"):
        execute(database, "DELETE FROM audit_signing_keys")


def test_a_checkpoint_re_signed_with_another_key_is_refused_by_the_pinned_key(
    database: Database,
) -> None:
    append_entries(database, 5, signer=SIGNER, every_n=5)
    drop_append_only(database)
    intruder = Signer.generate()
    execute(database, "DELETE FROM audit_checkpoints")
    with database.write() as conn:
        head = list(read_entries(conn))[-1]
        checkpoints.write_checkpoint(conn, intruder, 5, head.hash, head.ts)
    kinds = _kinds(_verify(database))
    assert kinds == [(5, "checkpoint_invalid")]


# -- the anchor file ----------------------------------------------------------------------------


def test_the_anchor_file_catches_a_rewrite_of_the_newest_entries(
    database: Database, tmp_path: Path
) -> None:
    anchors = tmp_path / "elsewhere" / "anchors.jsonl"
    anchor = AnchorFile(anchors, SIGNER)
    append_entries(database, 12, signer=SIGNER, every_n=5)
    with database.read() as conn:
        assert anchor.catch_up(conn) == 2
        assert anchor.catch_up(conn) == 0  # never twice
    assert stat.S_IMODE(anchors.stat().st_mode) == 0o600
    rewrite_newest(database, SIGNER, first_seq=9)

    assert _verify(database).ok  # the database alone verifies: the rewrite is consistent
    report = _verify(database, anchors=anchors)
    assert _kinds(report)[0] == (10, "modified")
    assert "rewritten together with its hash" in report.problems[0].detail


def test_anchor_lines_carry_the_public_key_and_a_torn_line_is_skipped(
    database: Database, tmp_path: Path
) -> None:
    anchors = tmp_path / "anchors.jsonl"
    anchor = AnchorFile(anchors, SIGNER)
    append_entries(database, 5, signer=SIGNER, every_n=5)
    with database.read() as conn:
        anchor.catch_up(conn)
    with anchors.open("ab") as out:
        out.write(b'{"seq": 10, "ha')  # a crash in the middle of a line
    append_entries(database, 5, signer=SIGNER, every_n=5, start=6)
    with database.read() as conn:
        assert anchor.catch_up(conn) == 1
    lines = anchors.read_text().splitlines()
    assert [json.loads(lines[0])["public_key_pem"], lines[1]] == [
        SIGNER.public_key_pem,
        '{"seq": 10, "ha',
    ]
    assert json.loads(lines[2])["seq"] == 10


def test_the_anchor_file_must_be_outside_the_data_directory(tmp_path: Path) -> None:
    with pytest.raises(AnchorSettingError, match="is inside data_dir"):
        check_anchor_path(tmp_path / "data" / "anchors.jsonl", tmp_path / "data")
    assert (
        check_anchor_path(tmp_path / "anchors.jsonl", tmp_path / "data")
        == (tmp_path / "anchors.jsonl").resolve()
    )
