"""Signed checkpoints: Ed25519 signatures that pin the audit chain at intervals.

A checkpoint signs the statement ``lockgate-audit-checkpoint:v1:{seq}:{hash}:{ts}``: the
chain had entry ``seq`` with chain hash ``hash`` at time ``ts``. Checkpoints are written
in the same transaction as the entry they pin (:func:`after_append`, every N entries) or
by a timer (:func:`checkpoint_if_due`). Exported to a file kept off-host
(:func:`export_checkpoints`), they let ``lockgate audit verify`` detect truncation and
rewriting even by someone who controls the database.

The table has no public-key column: the key that verifies a checkpoint is found by its
``key_id`` among keys the verifier trusts (the signing key file, ``--public-key``, or the
keys embedded in an exported checkpoint or anchor file). Each signing key is also
recorded in ``audit_signing_keys`` when first used (:func:`record_signing_key`), which the
verifier falls back on when it is given no key: weaker, since whoever controls the
database controls that table too. Checkpoints are also published to an anchor file when
one is configured (:mod:`lockgate.store.anchors`, ``Signer.anchor``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from sqlalchemy import Connection, func, insert, select

from lockgate.settings import Settings
from lockgate.store.audit import AuditEntry
from lockgate.store.db import make_private_dir
from lockgate.store.tables import (
    audit_checkpoints,
    audit_head,
    audit_log,
    audit_signing_keys,
)

__all__ = [
    "SIGNING_KEY_FILE",
    "Checkpoint",
    "CheckpointFileError",
    "Signer",
    "after_append",
    "checkpoint_due",
    "checkpoint_if_due",
    "checkpoint_statement",
    "export_checkpoints",
    "key_id_of",
    "load_public_key",
    "parse_ts",
    "public_key_pem",
    "read_checkpoint_file",
    "read_checkpoints",
    "record_signing_key",
    "signing_key_path",
    "stored_public_keys",
    "verify_checkpoint",
    "write_checkpoint",
]

SIGNING_KEY_FILE = "audit-signing.key"
_TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_CHECKPOINT_FIELDS = ("seq", "hash", "ts", "key_id", "signature")


def signing_key_path(settings: Settings) -> Path:
    """Where the server keeps its checkpoint signing key: ``<data_dir>/audit-signing.key``."""
    return settings.data_path / SIGNING_KEY_FILE


def parse_ts(text: str) -> datetime:
    """Parse a stored timestamp (``2026-11-25T10:00:00.000000Z``) as an aware UTC datetime."""
    return datetime.strptime(text, _TS_FORMAT).replace(tzinfo=UTC)


def checkpoint_statement(seq: int, hash: str, ts: str) -> bytes:
    """The exact bytes a checkpoint signature covers."""
    return f"lockgate-audit-checkpoint:v1:{seq}:{hash}:{ts}".encode()


def key_id_of(public_key: Ed25519PublicKey) -> str:
    """First 16 hex characters of SHA-256 over the raw 32-byte public key."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_key_pem(public_key: Ed25519PublicKey) -> str:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def load_public_key(pem: str | bytes) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM; raises ``ValueError`` for anything else."""
    data = pem.encode("ascii") if isinstance(pem, str) else pem
    key = serialization.load_pem_public_key(data)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


class Signer:
    """The checkpoint signing key (Ed25519)."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._private_key = private_key
        self.public_key: Ed25519PublicKey = private_key.public_key()
        self.key_id: str = key_id_of(self.public_key)
        self.anchor: Any = None
        """Where checkpoints are published once committed (an ``anchors.AnchorFile``)."""

    @classmethod
    def generate(cls) -> Signer:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_pem(cls, data: bytes) -> Signer:
        """Load an unencrypted PKCS#8 PEM private key; raises ``ValueError`` if it is not one."""
        key = serialization.load_pem_private_key(data, password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("not an Ed25519 private key")
        return cls(key)

    @classmethod
    def load_or_create(cls, path: str | Path) -> Signer:
        """Load the key at ``path``, creating it (mode 0600, parent directories) if missing."""
        path = Path(path)
        try:
            return cls.from_pem(path.read_bytes())
        except FileNotFoundError:
            pass
        signer = cls.generate()
        make_private_dir(path.parent)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process created it first: use theirs
            return cls.from_pem(path.read_bytes())
        with os.fdopen(fd, "wb") as out:
            out.write(signer.private_key_pem())
        return signer

    def private_key_pem(self) -> bytes:
        return self._private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @property
    def public_key_pem(self) -> str:
        return public_key_pem(self.public_key)

    def sign_checkpoint(self, seq: int, hash: str, ts: str) -> str:
        """Base64 signature over :func:`checkpoint_statement`."""
        signature = self._private_key.sign(checkpoint_statement(seq, hash, ts))
        return base64.b64encode(signature).decode("ascii")


def verify_checkpoint(
    public_key: Ed25519PublicKey,
    seq: int,
    hash: str,
    ts: str,
    signature: str,
) -> bool:
    """Whether ``signature`` is ``public_key``'s signature of this checkpoint."""
    try:
        raw = base64.b64decode(signature.encode("ascii"), validate=True)
        public_key.verify(raw, checkpoint_statement(seq, hash, ts))
    except (InvalidSignature, binascii.Error, UnicodeEncodeError, ValueError):
        return False
    return True


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    hash: str
    ts: str
    key_id: str
    signature: str
    public_key_pem: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def write_checkpoint(
    conn: Connection,
    signer: Signer,
    seq: int,
    hash: str,
    now: str,
) -> Checkpoint:
    """Sign and store a checkpoint of entry ``seq`` with chain hash ``hash``."""
    checkpoint = Checkpoint(
        seq=seq,
        hash=hash,
        ts=now,
        key_id=signer.key_id,
        signature=signer.sign_checkpoint(seq, hash, now),
    )
    values = {name: getattr(checkpoint, name) for name in _CHECKPOINT_FIELDS}
    conn.execute(insert(audit_checkpoints).values(**values))
    record_signing_key(conn, signer, now)
    return checkpoint


def after_append(
    conn: Connection, signer: Signer, entry: AuditEntry, now: str, every_n: int
) -> Checkpoint | None:
    """Checkpoint ``entry`` when its seq is a multiple of ``every_n`` (0 disables)."""
    if every_n <= 0 or entry.seq % every_n != 0:
        return None
    return write_checkpoint(conn, signer, entry.seq, entry.hash, now)


def _last_checkpoint(conn: Connection) -> Checkpoint | None:
    row = conn.execute(
        select(*(audit_checkpoints.c[name] for name in _CHECKPOINT_FIELDS))
        .order_by(audit_checkpoints.c.seq.desc(), audit_checkpoints.c.id.desc())
        .limit(1)
    ).first()
    return None if row is None else Checkpoint(**row._mapping)


def _first_entry_ts(conn: Connection) -> str | None:
    first = select(func.min(audit_log.c.seq)).scalar_subquery()
    ts: str | None = conn.execute(
        select(audit_log.c.ts).where(audit_log.c.seq == first)
    ).scalar_one_or_none()
    return ts


def checkpoint_due(conn: Connection, every_n: int, minutes: int, now: str) -> bool:
    """Whether the head moved since the last checkpoint and ``every_n`` entries or
    ``minutes`` have passed since it (either limit 0 = disabled)."""
    head_seq: int = conn.execute(select(audit_head.c.seq).where(audit_head.c.id == 1)).scalar_one()
    last = _last_checkpoint(conn)
    last_seq = 0 if last is None else last.seq
    if head_seq <= last_seq:
        return False
    if every_n > 0 and head_seq - last_seq >= every_n:
        return True
    if minutes <= 0:
        return False
    since = last.ts if last is not None else _first_entry_ts(conn)
    if since is None:
        return False
    return (parse_ts(now) - parse_ts(since)).total_seconds() >= minutes * 60


def checkpoint_if_due(
    conn: Connection, signer: Signer, every_n: int, minutes: int, now: str
) -> Checkpoint | None:
    """For a periodic timer: checkpoint the current head when :func:`checkpoint_due`."""
    if not checkpoint_due(conn, every_n, minutes, now):
        return None
    head = conn.execute(
        select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1).with_for_update()
    ).one()
    return write_checkpoint(conn, signer, head.seq, head.hash, now)


def record_signing_key(conn: Connection, signer: Signer, now: str) -> bool:
    """Record ``signer``'s public key in ``audit_signing_keys`` unless it is there already."""
    known = conn.execute(
        select(audit_signing_keys.c.key_id).where(audit_signing_keys.c.key_id == signer.key_id)
    ).first()
    if known is not None:
        return False
    conn.execute(
        insert(audit_signing_keys).values(
            key_id=signer.key_id, public_key_pem=signer.public_key_pem, added_at=now
        )
    )
    return True


def stored_public_keys(conn: Connection) -> list[Ed25519PublicKey]:
    """The keys recorded in ``audit_signing_keys`` (those that do not load are skipped)."""
    keys = []
    for row in conn.execute(select(audit_signing_keys).order_by(audit_signing_keys.c.added_at)):
        try:
            key = load_public_key(row.public_key_pem)
        except ValueError:
            continue
        if key_id_of(key) == row.key_id:
            keys.append(key)
    return keys


def read_checkpoints(conn: Connection) -> list[Checkpoint]:
    """The stored checkpoints in seq order (without public keys)."""
    rows = conn.execute(
        select(*(audit_checkpoints.c[name] for name in _CHECKPOINT_FIELDS)).order_by(
            audit_checkpoints.c.seq, audit_checkpoints.c.id
        )
    ).all()
    return [Checkpoint(**row._mapping) for row in rows]


def export_checkpoints(
    conn: Connection, public_keys: Iterable[Ed25519PublicKey] = ()
) -> list[dict[str, Any]]:
    """Every checkpoint as a dict, with the PEM of its key when it is among ``public_keys``."""
    pems = {key_id_of(key): public_key_pem(key) for key in public_keys}
    return [
        {**checkpoint.to_dict(), "public_key_pem": pems.get(checkpoint.key_id)}
        for checkpoint in read_checkpoints(conn)
    ]


class CheckpointFileError(ValueError):
    pass


def read_checkpoint_file(path: str | Path) -> list[Checkpoint]:
    """Checkpoints from a JSONL file written by ``lockgate audit checkpoints export``."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CheckpointFileError(f"cannot read {path}: {exc}") from None
    out: list[Checkpoint] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            out.append(_parse_line(line, f"{path}:{number}"))
    return out


def _parse_line(line: str, where: str) -> Checkpoint:
    try:
        data = json.loads(line)
    except ValueError as exc:
        raise CheckpointFileError(f"{where}: not valid JSON: {exc}") from None
    if not isinstance(data, Mapping):
        raise CheckpointFileError(f"{where}: expected a JSON object")
    values: dict[str, Any] = {}
    for name in _CHECKPOINT_FIELDS:
        value = data.get(name)
        wanted = int if name == "seq" else str
        if not isinstance(value, wanted) or isinstance(value, bool):
            raise CheckpointFileError(f"{where}: {name} must be a {wanted.__name__}")
        values[name] = value
    pem = data.get("public_key_pem")
    if pem is not None and not isinstance(pem, str):
        raise CheckpointFileError(f"{where}: public_key_pem must be a string or null")
    return Checkpoint(**values, public_key_pem=pem)
