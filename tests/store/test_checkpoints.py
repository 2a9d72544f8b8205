"""Signed checkpoints: the key, the signature, when they are written, and their export."""

from __future__ import annotations

import base64
import hashlib
import json
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key

from lockgate.settings import Settings
from lockgate.store.checkpoints import (
    Checkpoint,
    CheckpointFileError,
    Signer,
    after_append,
    checkpoint_due,
    checkpoint_if_due,
    checkpoint_statement,
    export_checkpoints,
    key_id_of,
    load_public_key,
    parse_ts,
    read_checkpoint_file,
    read_checkpoints,
    signing_key_path,
    verify_checkpoint,
    write_checkpoint,
)
from lockgate.store.db import Database
from tests.store.auditing import append_entries, ts

HASH = "ab" * 32
TS = "2026-11-25T10:00:00.000000Z"


# --- the key ------------------------------------------------------------------------------


def test_load_or_create_makes_a_private_key_file_and_reuses_it(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "data" / "audit-signing.key"

    created = Signer.load_or_create(path)
    loaded = Signer.load_or_create(path)

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert loaded.key_id == created.key_id
    assert loaded.public_key_pem == created.public_key_pem


def test_from_pem_round_trips_and_rejects_other_key_types() -> None:
    signer = Signer.generate()
    assert Signer.from_pem(signer.private_key_pem()).key_id == signer.key_id

    ec_pem = generate_private_key(SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(ValueError, match="Ed25519"):
        Signer.from_pem(ec_pem)
    with pytest.raises(ValueError, match="Ed25519"):
        load_public_key(
            generate_private_key(SECP256R1())
            .public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
    with pytest.raises(ValueError, match="Unable to load PEM"):
        Signer.from_pem(b"not a key")


def test_key_id_is_the_start_of_the_sha256_of_the_raw_public_key() -> None:
    signer = Signer.generate()
    raw = signer.public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    assert signer.key_id == hashlib.sha256(raw).hexdigest()[:16]
    assert key_id_of(load_public_key(signer.public_key_pem)) == signer.key_id


def test_signing_key_lives_in_the_data_directory(tmp_path: Path) -> None:
    settings = Settings(data_dir=str(tmp_path / "data"))
    assert signing_key_path(settings) == tmp_path / "data" / "audit-signing.key"


# --- the signature ------------------------------------------------------------------------


def test_signature_covers_the_canonical_statement() -> None:
    signer = Signer.generate()
    signature = signer.sign_checkpoint(7, HASH, TS)

    assert checkpoint_statement(7, HASH, TS) == (
        f"lockgate-audit-checkpoint:v1:7:{HASH}:{TS}".encode()
    )
    signer.public_key.verify(base64.b64decode(signature), checkpoint_statement(7, HASH, TS))
    assert verify_checkpoint(signer.public_key, 7, HASH, TS, signature)


@pytest.mark.parametrize(
    ("seq", "digest", "when"),
    [(8, HASH, TS), (7, "cd" * 32, TS), (7, HASH, "2026-11-25T10:00:00.000001Z")],
)
def test_signature_fails_for_any_other_statement(seq: int, digest: str, when: str) -> None:
    signer = Signer.generate()
    signature = signer.sign_checkpoint(7, HASH, TS)

    assert not verify_checkpoint(signer.public_key, seq, digest, when, signature)


@pytest.mark.parametrize(
    "signature", ["", "not base64!", base64.b64encode(b"x" * 64).decode(), "é"]
)
def test_malformed_signatures_do_not_verify(signature: str) -> None:
    assert not verify_checkpoint(Signer.generate().public_key, 7, HASH, TS, signature)


def test_signature_of_another_key_does_not_verify() -> None:
    signature = Signer.generate().sign_checkpoint(7, HASH, TS)
    assert not verify_checkpoint(Signer.generate().public_key, 7, HASH, TS, signature)


def test_parse_ts_reads_the_stored_format() -> None:
    assert parse_ts("2026-11-25T10:00:01.250000Z") == datetime(
        2026, 11, 25, 10, 0, 1, 250000, tzinfo=UTC
    )
    with pytest.raises(ValueError, match="does not match format"):
        parse_ts("2026-11-25 10:00")


# --- when checkpoints are written ---------------------------------------------------------


def test_after_append_checkpoints_every_n_entries(database: Database) -> None:
    signer = Signer.generate()
    entries = append_entries(database, 7, signer=signer, every_n=3)

    with database.read() as conn:
        stored = read_checkpoints(conn)

    assert [(c.seq, c.hash) for c in stored] == [(3, entries[2].hash), (6, entries[5].hash)]
    assert all(c.key_id == signer.key_id for c in stored)
    assert all(
        verify_checkpoint(signer.public_key, c.seq, c.hash, c.ts, c.signature) for c in stored
    )


def test_after_append_with_zero_never_checkpoints(database: Database) -> None:
    signer = Signer.generate()
    (entry,) = append_entries(database, 1)
    with database.write() as conn:
        assert after_append(conn, signer, entry, ts(0), 0) is None
        assert read_checkpoints(conn) == []


def test_checkpoint_due_on_an_empty_log_is_false(database: Database) -> None:
    with database.read() as conn:
        assert not checkpoint_due(conn, 1, 1, ts(10_000))


def test_checkpoint_due_by_count_and_by_time(database: Database) -> None:
    signer = Signer.generate()
    append_entries(database, 3)  # entries at ts(60), ts(120), ts(180)

    with database.read() as conn:
        assert not checkpoint_due(conn, 5, 10, ts(180))
        assert checkpoint_due(conn, 3, 10, ts(180))  # 3 entries, none checkpointed
        assert checkpoint_due(conn, 5, 10, ts(60 + 600))  # 10 minutes since the first entry
        assert not checkpoint_due(conn, 5, 0, ts(10_000))  # time limit disabled

    with database.write() as conn:
        written = checkpoint_if_due(conn, signer, 3, 10, ts(200))
    assert written is not None
    assert written.seq == 3

    with database.read() as conn:
        assert not checkpoint_due(conn, 1, 1, ts(10_000))  # the head has not moved since

    append_entries(database, 2, start=4)
    with database.read() as conn:
        assert not checkpoint_due(conn, 3, 10, ts(200 + 599))
        assert checkpoint_due(conn, 3, 10, ts(200 + 600))
        assert checkpoint_due(conn, 2, 10, ts(201))


def test_checkpoint_if_due_does_nothing_when_not_due(database: Database) -> None:
    append_entries(database, 1)
    with database.write() as conn:
        assert checkpoint_if_due(conn, Signer.generate(), 5, 10, ts(61)) is None
        assert read_checkpoints(conn) == []


# --- export and the checkpoint file -------------------------------------------------------


def test_export_carries_the_public_key_of_known_keys(database: Database) -> None:
    signer, other = Signer.generate(), Signer.generate()
    entries = append_entries(database, 2, signer=signer, every_n=2)
    with database.write() as conn:
        write_checkpoint(conn, other, 1, entries[0].hash, ts(500))

    with database.read() as conn:
        exported = export_checkpoints(conn, [signer.public_key])

    assert exported == [
        {
            "seq": 1,
            "hash": entries[0].hash,
            "ts": ts(500),
            "key_id": other.key_id,
            "signature": other.sign_checkpoint(1, entries[0].hash, ts(500)),
            "public_key_pem": None,
        },
        {
            "seq": 2,
            "hash": entries[1].hash,
            "ts": ts(120),
            "key_id": signer.key_id,
            "signature": signer.sign_checkpoint(2, entries[1].hash, ts(120)),
            "public_key_pem": signer.public_key_pem,
        },
    ]


def test_checkpoint_file_round_trips(tmp_path: Path) -> None:
    signer = Signer.generate()
    checkpoint = Checkpoint(
        7, HASH, TS, signer.key_id, signer.sign_checkpoint(7, HASH, TS), signer.public_key_pem
    )
    path = tmp_path / "checkpoints.jsonl"
    path.write_text(json.dumps(checkpoint.to_dict()) + "\n\n", encoding="utf-8")

    assert read_checkpoint_file(path) == [checkpoint]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", ":1: not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"seq": "7", "hash": "h", "ts": "t", "key_id": "k", "signature": "s"}', "seq must be"),
        ('{"seq": true, "hash": "h", "ts": "t", "key_id": "k", "signature": "s"}', "seq must be"),
        ('{"seq": 7, "ts": "t", "key_id": "k", "signature": "s"}', "hash must be"),
        (
            '{"seq": 7, "hash": "h", "ts": "t", "key_id": "k", "signature": "s", '
            '"public_key_pem": 5}',
            "public_key_pem must be",
        ),
    ],
)
def test_checkpoint_file_errors_name_the_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "checkpoints.jsonl"
    path.write_text(line + "\n", encoding="utf-8")

    with pytest.raises(CheckpointFileError, match=message):
        read_checkpoint_file(path)


def test_missing_checkpoint_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CheckpointFileError, match="cannot read"):
        read_checkpoint_file(tmp_path / "absent.jsonl")
