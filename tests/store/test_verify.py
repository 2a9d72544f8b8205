"""Verification: an intact chain passes; each tampering is named at the right entry.

Every tamper test plays an attacker with DBA rights, who first drops the append-only
triggers (the application itself cannot update or delete audit rows).
"""

from __future__ import annotations

import json
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select, text

from lockgate.store.audit import AuditEntry
from lockgate.store.checkpoints import (
    Checkpoint,
    Signer,
    export_checkpoints,
    read_checkpoint_file,
    write_checkpoint,
)
from lockgate.store.db import Database
from lockgate.store.tables import audit_log
from lockgate.store.verify import TamperProblem, VerifyReport, verify_chain, verify_database
from tests.store.auditing import (
    append_entries,
    drop_append_only,
    drop_append_only_statements,
    execute,
    forged_entry,
    insert_entry,
    set_head,
    shift_seqs,
    ts,
)

SIGNER = Signer.generate()


def build(database: Database, count: int = 10, every_n: int = 0) -> list[AuditEntry]:
    """``count`` entries checkpointed every ``every_n``; then the attacker's preparations."""
    entries = append_entries(database, count, signer=SIGNER, every_n=every_n)
    drop_append_only(database)
    return entries


def verify(
    database: Database,
    *,
    public_key: Ed25519PublicKey | None = SIGNER.public_key,
    external_checkpoints: list[Checkpoint] | None = None,
) -> VerifyReport:
    return verify_database(
        database, public_key=public_key, external_checkpoints=external_checkpoints
    )


def first(report: VerifyReport) -> tuple[int, str]:
    assert report.first is not None, "tampering not detected"
    return report.first.seq, report.first.kind


def kinds(report: VerifyReport) -> list[tuple[int, str]]:
    return [(p.seq, p.kind) for p in report.problems]


# --- intact chains ------------------------------------------------------------------------


def test_an_intact_chain_verifies(database: Database) -> None:
    build(database, 10, every_n=5)

    report = verify(database)

    assert report.ok
    assert report.first is None
    assert (report.entries, report.head_seq, report.checkpoints_checked) == (10, 10, 2)
    assert report.signatures_unchecked == 0


def test_an_empty_chain_verifies(database: Database) -> None:
    report = verify(database)
    assert report.ok
    assert (report.entries, report.head_seq, report.checkpoints_checked) == (0, 0, 0)


def test_without_a_public_key_signatures_are_checked_with_the_stored_keys(
    database: Database,
) -> None:
    build(database, 10, every_n=5)

    report = verify(database, public_key=None)

    assert report.ok
    assert (report.checkpoints_checked, report.signatures_unchecked) == (2, 0)
    assert (report.key_source, verify(database).key_source) == ("database", "given")


def test_without_any_key_nothing_is_claimed_about_signatures(database: Database) -> None:
    append_entries(database, 3)  # never checkpointed, so no key was recorded either

    report = verify(database, public_key=None)

    assert report.ok
    assert (report.key_source, report.checkpoints_checked) == ("none", 0)


def test_verify_chain_on_a_caller_connection(database: Database) -> None:
    build(database, 3)
    with database.read() as conn:
        assert verify_chain(conn).ok


def test_report_serialises(database: Database) -> None:
    build(database, 6)
    execute(database, "UPDATE audit_log SET reason = 'x' WHERE seq = 2")

    data = verify(database).to_dict()

    assert json.loads(json.dumps(data)) == data
    assert data["ok"] is False
    assert data["problems"][0]["seq"] == 2
    assert data["problems"][0]["kind"] == "modified"


# --- modified -----------------------------------------------------------------------------


def test_an_edited_field_is_modified_at_that_entry(database: Database) -> None:
    build(database)
    execute(database, "UPDATE audit_log SET actor_name = 'someone else' WHERE seq = 5")

    report = verify(database)

    assert kinds(report) == [(5, "modified")]
    assert str(report.first) == "entry 5: modified — entry 5 no longer matches its hash"


def test_an_edited_json_field_is_modified(database: Database) -> None:
    build(database)
    with database.write() as conn:
        conn.execute(audit_log.update().where(audit_log.c.seq == 3).values(after={"on": False}))

    assert kinds(verify(database)) == [(3, "modified")]


def test_an_edited_prev_hash_is_one_modification(database: Database) -> None:
    build(database)
    execute(database, f"UPDATE audit_log SET prev_hash = '{'1' * 64}' WHERE seq = 5")

    assert kinds(verify(database)) == [(5, "modified")]


def test_an_edited_stored_hash_is_one_modification(database: Database) -> None:
    build(database)
    execute(database, f"UPDATE audit_log SET hash = '{'2' * 64}' WHERE seq = 5")

    assert kinds(verify(database)) == [(5, "modified")]


def _rewrite_with_hash(database: Database, entries: list[AuditEntry], seq: int) -> None:
    """Edit entry ``seq`` and store its recomputed hash (the next link then breaks)."""
    forged = forged_entry(seq, entries[seq - 2].hash)
    execute(database, "DELETE FROM audit_log WHERE seq = :seq", seq=seq)
    insert_entry(database, forged)


def test_an_entry_rewritten_with_its_hash_breaks_the_next_link(database: Database) -> None:
    entries = build(database)
    _rewrite_with_hash(database, entries, 5)

    report = verify(database)

    assert kinds(report) == [(6, "deleted")]
    assert report.first is not None
    assert "rewritten together with its hash" in report.first.detail


def test_a_checkpoint_names_the_entry_rewritten_with_its_hash(database: Database) -> None:
    entries = build(database, every_n=5)
    _rewrite_with_hash(database, entries, 5)

    report = verify(database)

    assert kinds(report) == [(5, "modified")]
    assert report.first is not None
    assert "does not match the checkpoint of entry 5" in report.first.detail


def test_the_last_entry_rewritten_with_its_hash_is_caught_by_the_head(database: Database) -> None:
    entries = build(database)
    _rewrite_with_hash(database, entries, 10)

    assert kinds(verify(database)) == [(10, "modified")]


def test_a_renumbered_tail_is_modified(database: Database) -> None:
    build(database)
    shift_seqs(database, 8, 1)  # 8..10 become 9..11: links intact, numbering not

    report = verify(database)

    assert kinds(report) == [(9, "modified")]
    assert report.first is not None
    assert "renumbered" in report.first.detail


# --- deleted ------------------------------------------------------------------------------


def test_a_deleted_entry_is_reported_at_its_number(database: Database) -> None:
    build(database)
    execute(database, "DELETE FROM audit_log WHERE seq = 5")

    report = verify(database)

    assert kinds(report) == [(5, "deleted")]
    assert str(report.first) == (
        "entry 5: deleted — entry 5 is missing (the chain breaks before entry 6)"
    )


def test_deleted_entries_with_a_checkpoint_among_them_are_reported_once(database: Database) -> None:
    build(database, every_n=5)
    execute(database, "DELETE FROM audit_log WHERE seq BETWEEN 4 AND 6")

    report = verify(database)

    assert kinds(report) == [(4, "deleted")]
    assert report.first is not None
    assert "entries 4..6 are missing" in report.first.detail


def test_a_deleted_first_entry(database: Database) -> None:
    build(database)
    execute(database, "DELETE FROM audit_log WHERE seq = 1")

    assert kinds(verify(database)) == [(1, "deleted")]


def test_a_deleted_entry_hidden_by_renumbering(database: Database) -> None:
    build(database)
    execute(database, "DELETE FROM audit_log WHERE seq = 5")
    shift_seqs(database, 6, -1)
    set_head(database, 9, build_hash(database, 9))

    report = verify(database)

    assert kinds(report) == [(5, "deleted")]
    assert report.first is not None
    assert "entry 5 does not link to entry 4" in report.first.detail


def build_hash(database: Database, seq: int) -> str:
    with database.read() as conn:
        digest: str = conn.execute(
            select(audit_log.c.hash).where(audit_log.c.seq == seq)
        ).scalar_one()
    return digest


# --- inserted -----------------------------------------------------------------------------


def test_a_forged_entry_inserted_between_4_and_5(database: Database) -> None:
    entries = build(database)
    shift_seqs(database, 5, 1)
    insert_entry(database, forged_entry(5, entries[3].hash))

    report = verify(database)

    assert kinds(report) == [(5, "inserted")]
    assert str(report.first) == (
        "entry 5: inserted — entry 5 is not part of the chain: entry 6 links to entry 4"
    )


def test_forged_entries_inserted_at_the_start(database: Database) -> None:
    build(database)
    shift_seqs(database, 1, 2)
    one = forged_entry(1, "0" * 64)
    insert_entry(database, one)
    insert_entry(database, forged_entry(2, one.hash))

    report = verify(database)

    assert first(report) == (1, "inserted")
    assert "entries 1..2 are not part of the chain" in report.problems[0].detail


def test_a_badly_forged_insertion_is_still_one_insertion(database: Database) -> None:
    build(database)
    shift_seqs(database, 5, 1)
    insert_entry(database, forged_entry(5, "3" * 64))  # links to nothing

    assert kinds(verify(database)) == [(5, "inserted")]


def test_entries_appended_without_updating_the_head(database: Database) -> None:
    entries = build(database)
    eleven = forged_entry(11, entries[-1].hash)
    insert_entry(database, eleven)
    insert_entry(database, forged_entry(12, eleven.hash))

    report = verify(database)

    assert kinds(report) == [(11, "inserted")]
    assert report.first is not None
    assert "entries 11..12 follow the recorded head" in report.first.detail


# --- reordered ----------------------------------------------------------------------------


def _swap(database: Database, a: int, b: int) -> None:
    execute(
        database,
        "UPDATE audit_log SET seq = 100000 WHERE seq = :a",
        "UPDATE audit_log SET seq = :a WHERE seq = :b",
        "UPDATE audit_log SET seq = :b WHERE seq = 100000",
        a=a,
        b=b,
    )


def test_swapped_entries_are_one_reordering(database: Database) -> None:
    build(database)
    _swap(database, 4, 5)

    report = verify(database)

    assert kinds(report) == [(4, "reordered")]
    assert str(report.first) == (
        "entry 4: reordered — entry 4 links to entry 5, which comes after it"
    )


def test_distant_swap_is_one_reordering(database: Database) -> None:
    build(database)
    _swap(database, 3, 7)

    assert kinds(verify(database)) == [(3, "reordered")]


def test_a_reordering_does_not_hide_a_later_deletion(database: Database) -> None:
    build(database)
    _swap(database, 2, 3)
    execute(database, "DELETE FROM audit_log WHERE seq = 8")

    assert kinds(verify(database)) == [(2, "reordered"), (8, "deleted")]


# --- truncated ----------------------------------------------------------------------------


def test_deleting_the_last_entries_is_truncation(database: Database) -> None:
    build(database)
    execute(database, "DELETE FROM audit_log WHERE seq > 7")

    report = verify(database)

    assert kinds(report) == [(8, "truncated")]
    assert str(report.first) == (
        "entry 8: truncated — the head records 10 entries but the log ends at entry 7"
    )


def test_deleting_everything_is_truncation(database: Database) -> None:
    build(database, 3)
    execute(database, "DELETE FROM audit_log")

    assert kinds(verify(database)) == [(1, "truncated")]


def test_truncation_with_a_rewritten_head_goes_unnoticed_without_checkpoints(
    database: Database,
) -> None:
    entries = build(database)
    execute(database, "DELETE FROM audit_log WHERE seq > 7")
    set_head(database, 7, entries[6].hash)

    assert verify(database).ok  # the documented limit: nothing records the lost tail


def test_truncation_with_a_rewritten_head_is_caught_by_a_checkpoint(database: Database) -> None:
    entries = build(database, every_n=5)
    execute(database, "DELETE FROM audit_log WHERE seq > 7")
    set_head(database, 7, entries[6].hash)

    report = verify(database)

    assert kinds(report) == [(8, "truncated")]
    assert report.first is not None
    assert "checkpoint of entry 10" in report.first.detail


def test_a_deleted_head_row(database: Database) -> None:
    build(database, 3)
    execute(database, "DELETE FROM audit_head")

    assert kinds(verify(database)) == [(4, "truncated")]


# --- checkpoints --------------------------------------------------------------------------


def test_a_forged_checkpoint_signature_is_invalid(database: Database) -> None:
    build(database, every_n=5)
    forged = SIGNER.sign_checkpoint(5, "f" * 64, ts(0))
    execute(database, "UPDATE audit_checkpoints SET signature = :s WHERE seq = 5", s=forged)

    report = verify(database)

    assert kinds(report) == [(5, "checkpoint_invalid")]
    assert report.first is not None
    assert "signature does not verify" in report.first.detail


def test_a_checkpoint_signed_by_another_key_is_invalid(database: Database) -> None:
    entries = build(database)
    with database.write() as conn:
        write_checkpoint(conn, Signer.generate(), 10, entries[-1].hash, ts(1000))

    report = verify(database)

    assert kinds(report) == [(10, "checkpoint_invalid")]
    assert report.first is not None
    assert "unknown key" in report.first.detail


def test_an_invalid_checkpoint_is_not_trusted_for_its_position(database: Database) -> None:
    build(database, every_n=5)
    execute(database, "UPDATE audit_checkpoints SET seq = 50 WHERE seq = 10")

    assert kinds(verify(database)) == [(50, "checkpoint_invalid")]


def _export(database: Database, path: Path) -> list[Checkpoint]:
    with database.read() as conn:
        rows = export_checkpoints(conn, [SIGNER.public_key])
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return read_checkpoint_file(path)


def test_exported_checkpoints_catch_truncation_after_the_rows_are_deleted(
    database: Database, tmp_path: Path
) -> None:
    entries = build(database, every_n=5)
    exported = _export(database, tmp_path / "checkpoints.jsonl")
    execute(database, "DELETE FROM audit_log WHERE seq > 7")
    set_head(database, 7, entries[6].hash)
    execute(database, "DELETE FROM audit_checkpoints WHERE seq > 5")

    assert verify(database).ok  # the database alone no longer shows it
    report = verify(database, public_key=None, external_checkpoints=exported)

    assert kinds(report) == [(8, "truncated")]
    assert report.first is not None
    assert "exported checkpoint of entry 10" in report.first.detail
    assert report.checkpoints_checked == 3
    assert report.signatures_unchecked == 0  # the file's key verifies the stored one too


def test_exported_checkpoints_catch_a_rewritten_chain(database: Database, tmp_path: Path) -> None:
    entries = build(database, every_n=5)
    exported = _export(database, tmp_path / "checkpoints.jsonl")
    # The attacker rewrites entry 3 and every later link, and re-signs with their own key.
    attacker = Signer.generate()
    execute(database, "DELETE FROM audit_log WHERE seq >= 3", "DELETE FROM audit_checkpoints")
    prev = entries[1].hash
    for seq in range(3, 11):
        forged = forged_entry(seq, prev)
        insert_entry(database, forged)
        prev = forged.hash
        if seq % 5 == 0:
            with database.write() as conn:
                write_checkpoint(conn, attacker, seq, forged.hash, ts(seq))
    set_head(database, 10, prev)

    assert verify(database, public_key=attacker.public_key).ok
    report = verify(database, public_key=None, external_checkpoints=exported)

    assert kinds(report) == [
        (5, "checkpoint_invalid"),
        (5, "modified"),
        (10, "checkpoint_invalid"),
        (10, "modified"),
    ]


def test_a_tampered_exported_checkpoint_is_invalid(database: Database, tmp_path: Path) -> None:
    build(database, every_n=5)
    (five, ten) = _export(database, tmp_path / "checkpoints.jsonl")
    other = Signer.generate()
    bad_signature = Checkpoint(**{**five.to_dict(), "seq": 4})
    wrong_key = Checkpoint(**{**ten.to_dict(), "public_key_pem": other.public_key_pem})
    garbage_key = Checkpoint(**{**ten.to_dict(), "seq": 9, "public_key_pem": "garbage"})

    report = verify(database, external_checkpoints=[bad_signature, wrong_key, garbage_key])

    assert kinds(report) == [
        (4, "checkpoint_invalid"),
        (9, "checkpoint_invalid"),
        (10, "checkpoint_invalid"),
    ]


# --- several problems ---------------------------------------------------------------------


def test_problems_are_sorted_by_seq(database: Database) -> None:
    build(database)
    execute(database, "DELETE FROM audit_log WHERE seq = 8")
    execute(database, "UPDATE audit_log SET reason = 'x' WHERE seq = 3")

    report = verify(database)

    assert report.problems == [
        TamperProblem(3, "modified", "entry 3 no longer matches its hash"),
        TamperProblem(8, "deleted", "entry 8 is missing (the chain breaks before entry 9)"),
    ]


# --- one tampering, one problem -----------------------------------------------------------

_SINGLE_TAMPERINGS = [
    *(f"DELETE FROM audit_log WHERE seq = {n}" for n in (1, 2, 5, 11, 19, 20)),
    *(f"UPDATE audit_log SET reason = 'x' WHERE seq = {n}" for n in (1, 6, 20)),
    *(f"UPDATE audit_log SET hash = '{'e' * 64}' WHERE seq = {n}" for n in (1, 5, 20)),
    *(f"UPDATE audit_log SET prev_hash = hash WHERE seq = {n}" for n in (1, 7)),
    *(
        f"UPDATE audit_log SET seq = 100000 WHERE seq = {a}; "
        f"UPDATE audit_log SET seq = {a} WHERE seq = {b}; "
        f"UPDATE audit_log SET seq = {b} WHERE seq = 100000"
        for a, b in ((1, 2), (4, 5), (3, 17), (15, 20), (19, 20), (1, 20))
    ),
    *(
        f"UPDATE audit_log SET seq = seq + 100000 WHERE seq >= {n}; "
        f"UPDATE audit_log SET seq = seq - 100000 + {by} WHERE seq >= 100000"
        for n, by in ((1, 1), (4, 1), (6, 50), (20, 2))
    ),
    "DELETE FROM audit_log WHERE seq > 12",
    "DELETE FROM audit_checkpoints WHERE seq = 10",
]


def test_each_single_tampering_is_reported_exactly_once(database: Database) -> None:
    append_entries(database, 20, signer=SIGNER, every_n=5)  # triggers dropped per case
    failures = []
    for tampering in _SINGLE_TAMPERINGS:
        with database.engine.connect() as conn, conn.begin() as transaction:
            for statement in [*drop_append_only_statements(database), *tampering.split("; ")]:
                conn.execute(text(statement))
            report = verify_chain(conn, public_key=SIGNER.public_key)
            transaction.rollback()
        expected = 0 if "audit_checkpoints" in tampering else 1  # see docs: missing checkpoints
        if len(report.problems) != expected:
            failures.append((tampering, [str(p) for p in report.problems]))
    assert failures == []
    assert verify(database).ok  # every tampering was rolled back
