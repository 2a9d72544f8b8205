"""``lockgate audit``: verify, export and checkpoints export, straight from the database."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from lockgate.cli.main import main
from lockgate.store.anchors import AnchorFile
from lockgate.store.audit import AuditEntry
from lockgate.store.checkpoints import SIGNING_KEY_FILE, Signer
from lockgate.store.db import Database
from lockgate.store.migrate import upgrade
from tests.store.auditing import (
    append_entries,
    drop_append_only,
    execute,
    rewrite_newest,
    set_head,
)

Capture = pytest.CaptureFixture[str]


@dataclass
class Server:
    """What a server leaves behind: a data directory with its key, and a database."""

    data_dir: Path
    url: str
    database: Database
    signer: Signer
    entries: list[AuditEntry]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("LOCKGATE_DATA_DIR", "LOCKGATE_DATABASE_URL", "LOCKGATE_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # the default ./lockgate-data must not exist


def _server(data_dir: Path, url: str) -> Iterator[Server]:
    database = Database(url)
    upgrade(database)
    signer = Signer.load_or_create(data_dir / SIGNING_KEY_FILE)
    entries = append_entries(database, 10, signer=signer, every_n=5)
    try:
        yield Server(data_dir, url, database, signer, entries)
    finally:
        database.dispose()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """An embedded (SQLite) server's data directory."""
    data_dir = tmp_path / "data"
    yield from _server(data_dir, f"sqlite:///{data_dir / 'lockgate.db'}")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    """A server on each backend, reached with --database-url."""
    data_dir = tmp_path / "data"
    if request.param == "postgres":
        url = str(request.getfixturevalue("pg_database"))
    else:
        url = f"sqlite:///{data_dir / 'lockgate.db'}"
    yield from _server(data_dir, url)


def run(capsys: Capture, *argv: str) -> tuple[int, str, str]:
    code = main(["audit", *argv])
    out, err = capsys.readouterr()
    return code, out, err


# --- verify -------------------------------------------------------------------------------


def test_verify_an_intact_data_dir(server: Server, capsys: Capture) -> None:
    code, out, err = run(capsys, "verify", "--data-dir", str(server.data_dir))

    assert code == 0
    assert out == "audit chain intact: 10 entries, head seq 10, 2 checkpoints verified\n"
    assert err == ""


def test_verify_finds_the_data_dir_in_the_environment(
    server: Server, capsys: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOCKGATE_DATA_DIR", str(server.data_dir))

    code, out, _ = run(capsys, "verify")

    assert code == 0
    assert out.startswith("audit chain intact: 10 entries")


def test_verify_by_url_without_a_key_uses_the_stored_keys_and_says_so(
    any_server: Server, capsys: Capture
) -> None:
    code, out, err = run(capsys, "verify", "--database-url", any_server.url)

    assert code == 0
    assert out == "audit chain intact: 10 entries, head seq 10, 2 checkpoints verified\n"
    assert "checked with the keys the database records" in err


def test_verify_by_url_with_a_public_key(
    any_server: Server, capsys: Capture, tmp_path: Path
) -> None:
    key = tmp_path / "audit.pub"
    key.write_text(any_server.signer.public_key_pem, encoding="utf-8")

    code, out, err = run(
        capsys, "verify", "--database-url", any_server.url, "--public-key", str(key)
    )

    assert code == 0
    assert out.endswith(", 2 checkpoints verified\n")
    assert err == ""


def test_verify_a_tampered_chain_exits_4_naming_the_first_bad_entry(
    any_server: Server, capsys: Capture
) -> None:
    drop_append_only(any_server.database)
    execute(any_server.database, "UPDATE audit_log SET reason = 'nothing' WHERE seq = 5")
    execute(any_server.database, "DELETE FROM audit_log WHERE seq = 8")

    code, out, _ = run(
        capsys,
        "verify",
        "--database-url",
        any_server.url,
        "--data-dir",
        str(any_server.data_dir),
    )

    assert code == 4
    assert out.splitlines() == [
        "audit chain BROKEN at entry 5: modified — entry 5 no longer matches its hash",
        "  also at entry 8: deleted — entry 8 is missing (the chain breaks before entry 9)",
    ]


def test_verify_json(server: Server, capsys: Capture) -> None:
    drop_append_only(server.database)
    execute(server.database, "DELETE FROM audit_log WHERE seq > 7")

    code, out, _ = run(capsys, "verify", "--data-dir", str(server.data_dir), "--json")

    assert code == 4
    report = json.loads(out)
    assert report["ok"] is False
    assert (report["entries"], report["head_seq"], report["checkpoints_checked"]) == (7, 10, 2)
    assert report["problems"][0] == {
        "seq": 8,
        "kind": "truncated",
        "detail": "the head records 10 entries but the log ends at entry 7",
    }


def test_exported_checkpoints_catch_what_the_database_no_longer_shows(
    any_server: Server, capsys: Capture, tmp_path: Path
) -> None:
    exported = tmp_path / "offsite" / "checkpoints.jsonl"
    exported.parent.mkdir()
    code, _, err = run(
        capsys,
        "checkpoints",
        "export",
        "--database-url",
        any_server.url,
        "--data-dir",
        str(any_server.data_dir),
        "--output",
        str(exported),
    )
    assert (code, err) == (0, "")
    database = any_server.database
    drop_append_only(database)
    execute(database, "DELETE FROM audit_log WHERE seq > 7", "DELETE FROM audit_checkpoints")
    set_head(database, 7, any_server.entries[6].hash)

    assert run(capsys, "verify", "--database-url", any_server.url)[0] == 0
    code, out, _ = run(
        capsys, "verify", "--database-url", any_server.url, "--checkpoints", str(exported)
    )

    assert code == 4
    assert out == (
        "audit chain BROKEN at entry 8: truncated — the log ends at entry 7 but the exported "
        f"checkpoint of entry 10 (signed {any_server.entries[-1].ts}) shows it had more\n"
    )


def test_a_deleted_newest_checkpoint_breaks_the_cadence(
    any_server: Server, capsys: Capture
) -> None:
    drop_append_only(any_server.database)
    execute(any_server.database, "DELETE FROM audit_checkpoints WHERE seq = 10")
    assert run(capsys, "verify", "--database-url", any_server.url)[0] == 0  # cadence 100

    code, out, _ = run(
        capsys, "verify", "--database-url", any_server.url, "--checkpoint-every", "5"
    )

    assert code == 4
    assert out.startswith("audit chain BROKEN at entry 10: checkpoint_missing — no checkpoint")


def test_the_anchor_file_catches_a_rewrite_of_the_newest_entries(
    any_server: Server, capsys: Capture, tmp_path: Path
) -> None:
    anchors = tmp_path / "anchors" / "audit.jsonl"
    with any_server.database.read() as conn:
        AnchorFile(anchors, any_server.signer).catch_up(conn)
    rewrite_newest(any_server.database, any_server.signer, first_seq=8)
    common = ["verify", "--database-url", any_server.url, "--checkpoint-every", "5"]
    assert run(capsys, *common, "--data-dir", str(any_server.data_dir))[0] == 0

    code, out, _ = run(capsys, *common, "--anchors", str(anchors))

    assert code == 4
    assert out.startswith(
        "audit chain BROKEN at entry 10: modified — entry 10 does not match the exported "
        "checkpoint of entry 10"
    )
    code, _, err = run(capsys, *common, "--anchors", str(tmp_path / "nope.jsonl"))
    assert code == 2
    assert err.startswith("lockgate: error: --anchors: cannot read")


# --- export -------------------------------------------------------------------------------


def test_export_writes_one_json_object_per_entry(server: Server, capsys: Capture) -> None:
    code, out, _ = run(capsys, "export", "--format", "jsonl", "--data-dir", str(server.data_dir))

    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines == [entry.to_dict() for entry in server.entries]
    assert {"seq", "hash", "prev_hash"} <= set(lines[0])


def test_export_since_seq_to_a_file(server: Server, capsys: Capture, tmp_path: Path) -> None:
    target = tmp_path / "audit.jsonl"

    code, out, _ = run(
        capsys,
        "export",
        "--data-dir",
        str(server.data_dir),
        "--since-seq",
        "7",
        "--output",
        str(target),
    )

    assert (code, out) == (0, "")
    seqs = [json.loads(line)["seq"] for line in target.read_text(encoding="utf-8").splitlines()]
    assert seqs == [8, 9, 10]
    assert not Path(f"{target}.partial").exists()


def test_checkpoints_export_carries_the_public_key(server: Server, capsys: Capture) -> None:
    code, out, err = run(capsys, "checkpoints", "export", "--data-dir", str(server.data_dir))

    assert (code, err) == (0, "")
    rows = [json.loads(line) for line in out.splitlines()]
    assert [row["seq"] for row in rows] == [5, 10]
    assert {row["public_key_pem"] for row in rows} == {server.signer.public_key_pem}
    assert {row["key_id"] for row in rows} == {server.signer.key_id}


def test_checkpoints_export_without_a_key_warns(any_server: Server, capsys: Capture) -> None:
    code, out, err = run(capsys, "checkpoints", "export", "--database-url", any_server.url)

    assert code == 0
    assert [json.loads(line)["public_key_pem"] for line in out.splitlines()] == [None, None]
    assert "the exported checkpoints carry none" in err


# --- errors -------------------------------------------------------------------------------


def test_a_missing_data_dir_is_a_clear_error(capsys: Capture, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"

    code, out, err = run(capsys, "verify", "--data-dir", str(missing))

    assert (code, out) == (2, "")
    assert err == (
        f"lockgate: error: data directory {missing} does not exist "
        "(use --data-dir or --database-url)\n"
    )
    assert not missing.exists()


def test_the_default_data_dir_is_used_when_nothing_is_given(
    capsys: Capture, tmp_path: Path
) -> None:
    code, _, err = run(capsys, "export")

    assert code == 2
    assert f"data directory {tmp_path / 'lockgate-data'} does not exist" in err


def test_a_missing_database_file_is_not_created(capsys: Capture, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()

    code, _, err = run(capsys, "verify", "--data-dir", str(data_dir))

    assert code == 2
    assert f"no database at {data_dir / 'lockgate.db'}" in err
    assert list(data_dir.iterdir()) == []


def test_a_database_that_was_never_migrated(capsys: Capture, tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    sqlite3.connect(path).close()

    code, _, err = run(capsys, "verify", "--database-url", f"sqlite:///{path}")

    assert code == 2
    assert "has no Lockgate schema: it was never migrated" in err


def test_an_unreachable_database_exits_8(capsys: Capture) -> None:
    url = "postgresql://auditor:s3cret@127.0.0.1:1/lockgate"

    code, _, err = run(capsys, "export", "--database-url", url)

    assert code == 8
    assert err.startswith(
        "lockgate: error: cannot connect to postgresql://auditor:***@127.0.0.1:1/"
    )
    assert "s3cret" not in err
    assert "Traceback" not in err


def test_a_bad_checkpoint_file(server: Server, capsys: Capture, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"seq": 5}\n', encoding="utf-8")

    code, _, err = run(
        capsys, "verify", "--data-dir", str(server.data_dir), "--checkpoints", str(bad)
    )

    assert code == 2
    assert f"--checkpoints: {bad}:1: hash must be a str" in err


@pytest.mark.parametrize("content", [None, "not a key"])
def test_a_bad_public_key_file(
    server: Server, capsys: Capture, tmp_path: Path, content: str | None
) -> None:
    key = tmp_path / "key.pub"
    if content is not None:
        key.write_text(content, encoding="utf-8")

    code, _, err = run(
        capsys, "verify", "--data-dir", str(server.data_dir), "--public-key", str(key)
    )

    assert code == 2
    assert err.startswith("lockgate: error: --public-key: ")


def test_an_unwritable_output(server: Server, capsys: Capture, tmp_path: Path) -> None:
    target = tmp_path / "no" / "such" / "dir" / "out.jsonl"

    code, _, err = run(
        capsys, "export", "--data-dir", str(server.data_dir), "--output", str(target)
    )

    assert code == 2
    assert "--output: cannot write" in err


@pytest.mark.parametrize("argv", [[], ["checkpoints"]])
def test_a_group_without_a_command_prints_its_usage(capsys: Capture, argv: list[str]) -> None:
    code, out, err = run(capsys, *argv)

    assert (code, out) == (2, "")
    assert err.startswith("usage: lockgate audit")


def test_the_http_commands_share_the_audit_group(capsys: Capture) -> None:
    with pytest.raises(SystemExit):
        main(["audit", "--help"])
    out = capsys.readouterr().out
    for command in ("verify", "export", "checkpoints", "tail", "list"):
        assert f"    {command}" in out


# --- verify --file: an export, without a database ----------------------------------------


def exported(server: Server, capsys: Capture, tmp_path: Path, *extra: str) -> Path:
    target = tmp_path / "export.jsonl"
    code, _, _ = run(
        capsys, "export", "--data-dir", str(server.data_dir), "--output", str(target), *extra
    )
    assert code == 0
    return target


def rewrite(path: Path, change: object) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    change(lines)  # type: ignore[operator]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_verify_file_of_an_intact_export(server: Server, capsys: Capture, tmp_path: Path) -> None:
    target = exported(server, capsys, tmp_path)
    server.database.dispose()
    (server.data_dir / "lockgate.db").unlink()  # no database at all

    code, out, err = run(capsys, "verify", "--file", str(target))

    assert (code, err) == (0, "")
    assert out == "audit export OK: 10 entries (seq 1 to 10), hash chain intact\n"


def test_verify_file_of_an_export_since_a_seq(
    server: Server, capsys: Capture, tmp_path: Path
) -> None:
    target = exported(server, capsys, tmp_path, "--since-seq", "7")

    code, out, _ = run(capsys, "verify", "--file", str(target), "--json")

    assert code == 0
    assert json.loads(out) == {
        "ok": True,
        "entries": 3,
        "first_seq": 8,
        "last_seq": 10,
        "problems": [],
    }


def _modify(lines: list[str]) -> None:
    entry = json.loads(lines[3])
    entry["reason"] = "changed afterwards"
    lines[3] = json.dumps(entry)


def _swap(lines: list[str]) -> None:
    lines[4], lines[5] = lines[5], lines[4]


def _relink(lines: list[str]) -> None:
    """Entry 6 removed, and entry 7 renumbered to hide the gap (its hash still links 6)."""
    entry = json.loads(lines[6])
    entry["seq"] = 6
    del lines[5]
    lines[5] = json.dumps(entry)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        pytest.param(_modify, "entry 4: modified", id="modified"),
        pytest.param(lambda lines: lines.pop(5), "entry 7: out of sequence", id="deleted"),
        pytest.param(_swap, "entry 6: out of sequence", id="reordered"),
        pytest.param(_relink, "entry 6: deleted or inserted before it", id="relinked"),
        pytest.param(lambda lines: lines.pop(0), "", id="head-cut-is-a-since-seq-export"),
    ],
)
def test_verify_file_names_the_first_break(
    server: Server, capsys: Capture, tmp_path: Path, change: object, problem: str
) -> None:
    target = exported(server, capsys, tmp_path)
    rewrite(target, change)

    code, out, _ = run(capsys, "verify", "--file", str(target))

    if problem:
        assert code == 4
        assert out.startswith(f"audit export BROKEN: {problem}")
    else:
        assert code == 0


def test_verify_file_first_entry_must_follow_genesis(
    server: Server, capsys: Capture, tmp_path: Path
) -> None:
    target = exported(server, capsys, tmp_path)

    def forge(lines: list[str]) -> None:
        entry = json.loads(lines[0])
        entry["prev_hash"] = "1" * 64
        lines[0] = json.dumps(entry)

    rewrite(target, forge)
    code, out, _ = run(capsys, "verify", "--file", str(target))
    assert code == 4
    assert "entry 1: inserted" in out


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param("not json\n", "export.jsonl:1: not a JSON line", id="not-json"),
        pytest.param("[1]\n", "export.jsonl:1: expected an audit entry object", id="not-object"),
        pytest.param('{"seq": 1, "hash": "x"}\n', "field 'prev_hash' is missing", id="missing"),
        pytest.param(
            '{"seq": "1", "hash": "x", "prev_hash": "y"}\n',
            "field 'seq' must be an integer",
            id="seq-type",
        ),
    ],
)
def test_verify_file_unreadable_lines_are_usage_errors(
    capsys: Capture, tmp_path: Path, content: str, message: str
) -> None:
    target = tmp_path / "export.jsonl"
    target.write_text(content, encoding="utf-8")
    code, _, err = run(capsys, "verify", "--file", str(target))
    assert code == 2
    assert message in err


def test_verify_file_missing(capsys: Capture, tmp_path: Path) -> None:
    code, _, err = run(capsys, "verify", "--file", str(tmp_path / "nope.jsonl"))
    assert code == 2
    assert "cannot read" in err
    assert "nope.jsonl" in err


@pytest.mark.parametrize("option", ["--data-dir", "--database-url", "--public-key"])
def test_verify_file_refuses_database_options(capsys: Capture, tmp_path: Path, option: str) -> None:
    target = tmp_path / "export.jsonl"
    target.write_text("", encoding="utf-8")
    code, _, err = run(capsys, "verify", "--file", str(target), option, "x")
    assert code == 2
    assert f"{option} cannot be used with --file" in err
