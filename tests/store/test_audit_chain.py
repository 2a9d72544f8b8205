"""The audit chain as appended by the application, and the database refusing to rewrite it."""

from __future__ import annotations

import itertools
import threading

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from lockgate.store import audit
from lockgate.store.audit import GENESIS, entry_hash, read_entries
from lockgate.store.checkpoints import Signer, write_checkpoint
from lockgate.store.db import Database
from lockgate.store.tables import audit_head
from lockgate.store.verify import verify_database
from tests.store.auditing import append_entries, draft, execute, ts


def test_append_links_each_entry_to_the_one_before(database: Database) -> None:
    appended = append_entries(database, 6)

    with database.read() as conn:
        stored = list(read_entries(conn, batch=4))
        head = conn.execute(select(audit_head.c.seq, audit_head.c.hash)).one()

    assert stored == appended
    assert [e.seq for e in stored] == [1, 2, 3, 4, 5, 6]
    assert stored[0].prev_hash == GENESIS
    for before, after in itertools.pairwise(stored):
        assert after.prev_hash == before.hash
    for entry in stored:
        assert entry_hash(entry.prev_hash, entry.to_dict()) == entry.hash
    assert (head.seq, head.hash) == (6, stored[-1].hash)


def test_stored_json_round_trips_exactly(database: Database) -> None:
    (entry,) = append_entries(database, 1, start=7)

    with database.read() as conn:
        (stored,) = read_entries(conn)

    assert stored.after == draft(7).after
    assert stored.evidence == {"ticket": "T-7", "checks": [True, None, 1.5]}
    assert stored.actor_name == "Zoë Ådmin ✓"
    assert stored.changes == entry.changes
    assert stored.changes == [
        {"path": "note", "old": None, "new": "änderung 7"},
        {"path": "on", "old": False, "new": True},
        {
            "path": "rules",
            "old": [{"id": "r1", "weight": 0.25}],
            "new": [{"id": "r1", "weight": 0.5}],
        },
    ]


def test_read_entries_after_a_seq(database: Database) -> None:
    append_entries(database, 5)

    with database.read() as conn:
        assert [e.seq for e in read_entries(conn, after=3)] == [4, 5]
        assert [e.seq for e in read_entries(conn, after=5)] == []


def test_concurrent_appends_form_one_chain(database: Database) -> None:
    errors: list[BaseException] = []

    def writer(worker: int) -> None:
        try:
            for i in range(10):
                with database.write() as conn:
                    audit.append(conn, draft(worker * 100 + i), ts(i))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    report = verify_database(database)
    assert report.ok, report.problems
    assert (report.entries, report.head_seq) == (40, 40)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_log SET reason = 'rewritten' WHERE seq = 2",
        "UPDATE audit_log SET seq = seq + 10",
        "DELETE FROM audit_log WHERE seq = 3",
        "DELETE FROM audit_log",
        "UPDATE audit_checkpoints SET seq = 1",
        "DELETE FROM audit_checkpoints",
    ],
)
def test_the_database_refuses_to_update_or_delete_audit_rows(
    database: Database, statement: str
) -> None:
    signer = Signer.generate()
    entries = append_entries(database, 3, signer=signer, every_n=3)

    with pytest.raises(DBAPIError, match="append-only"):
        execute(database, statement)

    with database.read() as conn:
        assert list(read_entries(conn)) == entries
        assert conn.execute(text("SELECT count(*) FROM audit_checkpoints")).scalar_one() == 1


@pytest.mark.parametrize(
    "database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
@pytest.mark.parametrize("table", ["audit_log", "audit_checkpoints"])
def test_postgres_refuses_to_truncate_audit_tables(database: Database, table: str) -> None:
    signer = Signer.generate()
    append_entries(database, 2, signer=signer, every_n=1)

    with pytest.raises(DBAPIError, match="append-only"):
        execute(database, f"TRUNCATE {table}")

    assert verify_database(database, public_key=signer.public_key).checkpoints_checked == 2


def test_checkpoints_are_written_in_the_appending_transaction(database: Database) -> None:
    signer = Signer.generate()

    def failing_change() -> None:
        with database.write() as conn:
            entry = audit.append(conn, draft(1), ts(0))
            write_checkpoint(conn, signer, entry.seq, entry.hash, ts(0))
            raise RuntimeError("the change fails")

    with pytest.raises(RuntimeError, match="the change fails"):
        failing_change()

    with database.read() as conn:
        assert list(read_entries(conn)) == []
        assert conn.execute(text("SELECT count(*) FROM audit_checkpoints")).scalar_one() == 0
