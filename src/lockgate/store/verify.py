"""Verify the audit chain and say where and how it was tampered with.

The walk recomputes every entry's hash and follows the ``prev_hash`` links in ``seq``
order, then compares the end of the log with the ``audit_head`` row and every signed
checkpoint (stored, and optionally an exported file kept off-host). Each problem names
one entry (``seq``) and a kind:

``modified``
    an entry's content no longer matches its hash, or an entry pinned by a checkpoint
    now has a different hash (rewritten together with its hash).
``deleted``
    entries are missing. ``seq`` is the first missing number when the numbering shows a
    gap, otherwise the entry whose link points to a hash no longer in the log.
``inserted``
    entries that are not part of the chain: ``seq`` is the first of them.
``reordered``
    an entry links to an entry that comes after it: ``seq`` is the first misplaced one.
``truncated``
    the head row or a checkpoint records entries beyond the end of the log: ``seq`` is
    the first missing number.
``checkpoint_invalid``
    a checkpoint whose signature does not verify (``seq`` is the checkpoint's).
``checkpoint_missing``
    a checkpoint that must exist does not: with ``checkpoint_every`` N, a stretch of N or
    more entries without one (``seq`` is the entry that should have been checkpointed),
    or a checkpoint in the anchor file that the database no longer has.

One tampering is reported once where the evidence allows: the consequences of a reported
reordering or insertion on the links that follow are not reported again.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Connection, select

from lockgate.store.audit import GENESIS, AuditEntry, entry_hash, read_entries
from lockgate.store.checkpoints import (
    Checkpoint,
    key_id_of,
    load_public_key,
    read_checkpoints,
    stored_public_keys,
    verify_checkpoint,
)
from lockgate.store.db import Database
from lockgate.store.tables import audit_head, audit_log

__all__ = [
    "ProblemKind",
    "TamperProblem",
    "VerifyError",
    "VerifyReport",
    "verify_chain",
    "verify_database",
]

ProblemKind = Literal[
    "modified",
    "deleted",
    "inserted",
    "reordered",
    "truncated",
    "checkpoint_invalid",
    "checkpoint_missing",
]
_LINK_KINDS = ("deleted", "inserted", "reordered")


class VerifyError(RuntimeError):
    """The log could not be verified (not: it was found tampered with)."""


@dataclass(frozen=True)
class TamperProblem:
    seq: int
    kind: ProblemKind
    detail: str

    def __str__(self) -> str:
        return f"entry {self.seq}: {self.kind} — {self.detail}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class VerifyReport:
    entries: int
    head_seq: int
    checkpoints_checked: int
    problems: list[TamperProblem] = field(default_factory=list)
    signatures_unchecked: int = 0
    """Checkpoints whose signature could not be checked for want of a public key."""
    key_source: str = "none"
    """Where the keys checking signatures came from: ``given`` (a key file or
    ``--public-key``, and any anchor or exported file), ``database`` (only the keys the
    database records: as trustworthy as the database) or ``none``."""

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first(self) -> TamperProblem | None:
        return self.problems[0] if self.problems else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "head_seq": self.head_seq,
            "checkpoints_checked": self.checkpoints_checked,
            "signatures_unchecked": self.signatures_unchecked,
            "key_source": self.key_source,
            "problems": [problem.to_dict() for problem in self.problems],
        }


def verify_database(
    database: Database,
    *,
    public_key: Ed25519PublicKey | Iterable[Ed25519PublicKey] | None = None,
    external_checkpoints: Iterable[Checkpoint] | None = None,
    checkpoint_every: int = 0,
) -> VerifyReport:
    """:func:`verify_chain` in one read transaction over a consistent snapshot."""
    options = {} if database.is_sqlite else {"isolation_level": "REPEATABLE READ"}
    with database.engine.connect().execution_options(**options) as conn, conn.begin():
        return verify_chain(
            conn,
            public_key=public_key,
            external_checkpoints=external_checkpoints,
            checkpoint_every=checkpoint_every,
        )


def verify_chain(
    conn: Connection,
    *,
    public_key: Ed25519PublicKey | Iterable[Ed25519PublicKey] | None = None,
    external_checkpoints: Iterable[Checkpoint] | None = None,
    checkpoint_every: int = 0,
) -> VerifyReport:
    """Check the whole chain; ``conn`` must see one snapshot (see :func:`verify_database`).

    ``public_key`` is the key (or keys) trusted to have signed the stored checkpoints,
    together with the keys carried by ``external_checkpoints`` (exported or anchored, kept
    off-host, so trusted): they are pinned, and a stored checkpoint signed by any other
    key is ``checkpoint_invalid``. With none of those, signatures are checked with the
    keys the database records (``key_source`` ``database``), and with no key at all they
    are not checked (``signatures_unchecked``). ``checkpoint_every`` N (0: not checked)
    is the cadence the server checkpoints at: a stretch of N entries without a checkpoint
    means one was deleted.
    """
    index = _Index.read(conn)
    findings = _Findings()
    count = _walk(conn, index, findings)
    head = conn.execute(
        select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)
    ).first()
    _check_head(None if head is None else (head.seq, head.hash), index, findings)
    external = list(external_checkpoints or ())
    keys = _trusted_keys(public_key) | _embedded_keys(external)
    key_source = "given" if keys else "none"
    if not keys:
        keys = _trusted_keys(stored_public_keys(conn))
        key_source = "database" if keys else "none"
    checker = _CheckpointChecker(index, findings, keys)
    stored = read_checkpoints(conn)
    for checkpoint in stored:
        checker.check(checkpoint, external=False)
    for checkpoint in external:
        checker.check(checkpoint, external=True)
    head_seq = head.seq if head is not None else (index.seqs[-1] if index.seqs else 0)
    _check_cadence(sorted({c.seq for c in stored}), head_seq, checkpoint_every, findings)
    _check_anchored(stored, external, findings)
    return VerifyReport(
        entries=count,
        head_seq=head_seq,
        checkpoints_checked=checker.checked,
        problems=findings.sorted(),
        signatures_unchecked=checker.unchecked,
        key_source=key_source,
    )


def _check_cadence(seqs: list[int], head_seq: int, every: int, findings: _Findings) -> None:
    """Every ``every`` entries the server writes a checkpoint in the same transaction, so
    no stretch of ``every`` entries (from the start, between checkpoints, or up to the
    head) lacks one; timed checkpoints only add more."""
    if every <= 0:
        return
    previous = 0
    for seq in [*seqs, head_seq + every]:  # the sentinel checks the stretch up to the head
        if seq - previous > every and previous + every <= head_seq:
            findings.add(
                previous + every,
                "checkpoint_missing",
                f"no checkpoint of entries {previous + 1} to {min(seq, head_seq + 1) - 1}: "
                f"one is written every {every} entries, so a checkpoint was deleted",
            )
            return  # the first one tells; the others usually follow from it
        previous = max(previous, seq)


def _check_anchored(
    stored: list[Checkpoint], external: list[Checkpoint], findings: _Findings
) -> None:
    """A checkpoint published outside the database must still be in it (reported when
    nothing else explains its absence: a truncation or rewrite is reported already)."""
    if findings.problems:
        return
    kept = {(c.seq, c.signature) for c in stored}
    for checkpoint in external:
        if (checkpoint.seq, checkpoint.signature) not in kept:
            findings.add(
                checkpoint.seq,
                "checkpoint_missing",
                f"the exported checkpoint of entry {checkpoint.seq} (signed {checkpoint.ts}) "
                "is not in the database",
            )
            return


def _trusted_keys(
    public_key: Ed25519PublicKey | Iterable[Ed25519PublicKey] | None,
) -> dict[str, Ed25519PublicKey]:
    if public_key is None:
        return {}
    keys = [public_key] if isinstance(public_key, Ed25519PublicKey) else list(public_key)
    return {key_id_of(key): key for key in keys}


def _embedded_keys(checkpoints: Iterable[Checkpoint]) -> dict[str, Ed25519PublicKey]:
    """The well-formed public keys carried by exported checkpoints (trusted as off-host)."""
    keys: dict[str, Ed25519PublicKey] = {}
    for checkpoint in checkpoints:
        if checkpoint.public_key_pem and checkpoint.key_id not in keys:
            try:
                key = load_public_key(checkpoint.public_key_pem)
            except ValueError:
                continue
            if key_id_of(key) == checkpoint.key_id:
                keys[checkpoint.key_id] = key
    return keys


@dataclass
class _Index:
    """Every row's seq and stored hash, in seq order: the first of the two passes."""

    seqs: list[int]
    hashes: list[str]
    position: dict[str, int]

    @classmethod
    def read(cls, conn: Connection, batch: int = 5000) -> _Index:
        seqs: list[int] = []
        hashes: list[str] = []
        for seq, digest in _stream_seq_hash(conn, batch):
            seqs.append(seq)
            hashes.append(digest)
        position: dict[str, int] = {}
        for at, digest in enumerate(hashes):
            position.setdefault(digest, at)
        return cls(seqs, hashes, position)

    def at_seq(self, seq: int) -> int | None:
        at = bisect.bisect_left(self.seqs, seq)
        return at if at < len(self.seqs) and self.seqs[at] == seq else None

    @property
    def next_seq(self) -> int:
        """The first number after the last entry."""
        return self.seqs[-1] + 1 if self.seqs else 1


def _stream_seq_hash(conn: Connection, batch: int) -> Iterator[tuple[int, str]]:
    last: int | None = None
    while True:
        query = select(audit_log.c.seq, audit_log.c.hash).order_by(audit_log.c.seq).limit(batch)
        if last is not None:
            query = query.where(audit_log.c.seq > last)
        rows = conn.execute(query).all()
        if not rows:
            return
        for row in rows:
            yield row.seq, row.hash
        last = rows[-1].seq


class _Findings:
    """Problems found so far, one per (seq, kind), plus the reordered block in progress."""

    def __init__(self) -> None:
        self.problems: dict[tuple[int, str], TamperProblem] = {}
        self.block: tuple[int, int] | None = None  # positions explained by a reordering
        self.missing: list[range] = []  # numbers reported missing
        self.dangling: dict[int, str] = {}  # seq -> prev_hash of a link to nothing, no gap
        self.renumbered: list[int] = []  # entries reported as renumbered

    def add(self, seq: int, kind: ProblemKind, detail: str) -> None:
        self.problems.setdefault((seq, kind), TamperProblem(seq, kind, detail))

    def drop(self, kind: ProblemKind, first_seq: int, last_seq: int) -> None:
        for key in [k for k in self.problems if k[1] == kind and first_seq <= k[0] <= last_seq]:
            del self.problems[key]

    def has(self, kinds: Iterable[str], up_to_seq: int | None = None) -> bool:
        wanted = set(kinds)
        return any(
            kind in wanted and (up_to_seq is None or seq <= up_to_seq)
            for seq, kind in self.problems
        )

    def sorted(self) -> list[TamperProblem]:
        return sorted(self.problems.values(), key=lambda problem: problem.seq)


def _walk(conn: Connection, index: _Index, findings: _Findings) -> int:
    """Second pass: every entry's content, then its link to the entry before it."""
    prev_stored = prev_actual = GENESIS
    count = 0
    for at, entry in enumerate(read_entries(conn)):
        if at >= len(index.seqs) or entry.seq != index.seqs[at]:
            raise VerifyError("the audit log changed during verification; verify in one snapshot")
        actual = entry_hash(entry.prev_hash, entry.to_dict())
        modified = actual != entry.hash
        if modified:
            findings.add(entry.seq, "modified", f"entry {entry.seq} no longer matches its hash")
        if entry.prev_hash in (prev_stored, prev_actual):
            _check_numbering(at, entry, index, findings)
        elif modified:
            _check_gap(at, entry, index, findings)
        else:
            _check_link(at, entry, index, findings)
        prev_stored, prev_actual = entry.hash, actual
        count += 1
    if count != len(index.seqs):
        raise VerifyError("the audit log changed during verification; verify in one snapshot")
    return count


def _check_numbering(at: int, entry: AuditEntry, index: _Index, findings: _Findings) -> None:
    """The link holds; the numbers (not covered by the hash) must still be consecutive."""
    expected = index.seqs[at - 1] + 1 if at else 1
    if entry.seq != expected:
        findings.add(
            entry.seq,
            "modified",
            f"entry {entry.seq} links correctly to its predecessor but should be numbered "
            f"{expected}: entries were renumbered",
        )
        findings.renumbered.append(entry.seq)


def _check_gap(at: int, entry: AuditEntry, index: _Index, findings: _Findings) -> bool:
    """Report missing numbers before ``entry``; whether there were any."""
    first_missing = index.seqs[at - 1] + 1 if at else 1
    if entry.seq <= first_missing:
        return False
    last_missing = entry.seq - 1
    what = (
        f"entry {first_missing} is missing"
        if first_missing == last_missing
        else f"entries {first_missing}..{last_missing} are missing"
    )
    findings.add(first_missing, "deleted", f"{what} (the chain breaks before entry {entry.seq})")
    findings.missing.append(range(first_missing, entry.seq))
    return True


def _check_link(at: int, entry: AuditEntry, index: _Index, findings: _Findings) -> None:
    target = -1 if entry.prev_hash == GENESIS else index.position.get(entry.prev_hash)
    if _explained_by_reordering(at, target, findings):
        return
    if target is None:
        _report_deleted(at, entry, index, findings)
    elif target >= at:
        findings.add(
            entry.seq,
            "reordered",
            f"entry {entry.seq} links to entry {index.seqs[target]}, which comes after it",
        )
        findings.block = (at, target + 1)
    else:
        _report_inserted(at, target, entry, index, findings)


def _explained_by_reordering(at: int, target: int | None, findings: _Findings) -> bool:
    """Links in or just after a reported reordered block are its consequences."""
    if findings.block is None:
        return False
    start, end = findings.block
    inside = start <= at <= end or (target is not None and start <= target <= end)
    if inside:
        findings.block = (start, max(end, at + 1, (target or 0) + 1))
    return inside


def _report_deleted(at: int, entry: AuditEntry, index: _Index, findings: _Findings) -> None:
    if _check_gap(at, entry, index, findings):
        return
    if at == 0:
        detail = (
            f"entry {entry.seq} is the first entry but does not start the chain: entries "
            "before it were deleted, or it was rewritten together with its hash"
        )
    else:
        detail = (
            f"entry {entry.seq} does not link to entry {index.seqs[at - 1]}: an entry before "
            "it was deleted, or the previous entry was rewritten together with its hash"
        )
    findings.add(entry.seq, "deleted", detail)
    findings.dangling[entry.seq] = entry.prev_hash


def _report_inserted(
    at: int, target: int, entry: AuditEntry, index: _Index, findings: _Findings
) -> None:
    first, last = index.seqs[target + 1], index.seqs[at - 1]
    span = f"entry {first} is" if first == last else f"entries {first}..{last} are"
    anchor = "the start of the chain" if target < 0 else f"entry {index.seqs[target]}"
    findings.drop("deleted", first, last)  # broken links inside the forged span
    findings.add(
        first,
        "inserted",
        f"{span} not part of the chain: entry {entry.seq} links to {anchor}",
    )


def _check_head(head: tuple[int, str] | None, index: _Index, findings: _Findings) -> None:
    """The head row records the length and the last hash of the chain."""
    if head is None:
        findings.add(index.next_seq, "truncated", "the audit_head row is missing")
        return
    seq, digest = head
    if not index.seqs:
        if seq > 0:
            findings.add(1, "truncated", f"the log is empty but the head records {_entries(seq)}")
        return
    last_at = len(index.seqs) - 1
    last_seq = index.seqs[last_at]
    at = index.position.get(digest)
    if at == last_at:
        if seq != last_seq and not findings.problems:
            kind: ProblemKind = "inserted" if last_seq > seq else "deleted"
            findings.add(
                min(seq, last_seq) + 1,
                kind,
                f"the head records entry {seq} but the last entry, with the same hash, is "
                f"numbered {last_seq}",
            )
    elif at is not None:
        if findings.block is not None and findings.block[0] <= at <= findings.block[1]:
            return  # the last entry was moved by a reported reordering
        findings.add(
            index.seqs[at + 1],
            "inserted",
            f"entries {index.seqs[at + 1]}..{last_seq} follow the recorded head (entry "
            f"{index.seqs[at]}): they were added outside the application",
        )
    else:
        _head_hash_unknown(seq, last_seq, findings)


def _head_hash_unknown(seq: int, last_seq: int, findings: _Findings) -> None:
    if seq > last_seq:
        findings.add(
            last_seq + 1,
            "truncated",
            f"the head records {_entries(seq)} but the log ends at entry {last_seq}",
        )
    elif seq == last_seq:
        findings.add(
            last_seq,
            "modified",
            f"the head records another hash for entry {seq}: it was rewritten together with "
            "its hash, or the head row was altered",
        )
    else:
        findings.add(
            seq + 1,
            "inserted",
            f"the head records entry {seq} with a hash not in the log; the log goes on to "
            f"entry {last_seq}",
        )


class _CheckpointChecker:
    def __init__(
        self, index: _Index, findings: _Findings, keys: dict[str, Ed25519PublicKey]
    ) -> None:
        self.index = index
        self.findings = findings
        self.keys = keys
        self.checked = 0
        self.unchecked = 0

    def check(self, checkpoint: Checkpoint, *, external: bool) -> None:
        self.checked += 1
        name = f"{'exported ' if external else ''}checkpoint of entry {checkpoint.seq}"
        if self._signature_problem(checkpoint, name, external=external):
            return
        self._check_pinned_entry(checkpoint, name)

    def _signature_problem(self, checkpoint: Checkpoint, name: str, *, external: bool) -> bool:
        key, why = self._key_for(checkpoint, external=external)
        if why:
            self.findings.add(checkpoint.seq, "checkpoint_invalid", f"{name}: {why}")
            return True
        if key is None:
            self.unchecked += 1
            return False
        if verify_checkpoint(
            key, checkpoint.seq, checkpoint.hash, checkpoint.ts, checkpoint.signature
        ):
            return False
        self.findings.add(
            checkpoint.seq,
            "checkpoint_invalid",
            f"{name} (signed {checkpoint.ts}): the signature does not verify "
            f"with key {checkpoint.key_id}",
        )
        return True

    def _key_for(
        self, checkpoint: Checkpoint, *, external: bool
    ) -> tuple[Ed25519PublicKey | None, str]:
        """The key to check with, or why the checkpoint is invalid without checking."""
        if external and checkpoint.public_key_pem:
            try:
                key = load_public_key(checkpoint.public_key_pem)
            except ValueError:
                return None, "its public key is not an Ed25519 PEM key"
            if key_id_of(key) != checkpoint.key_id:
                return None, f"its public key does not have the key id {checkpoint.key_id}"
            return key, ""
        trusted = self.keys.get(checkpoint.key_id)
        if trusted is None and self.keys:
            return None, f"signed by the unknown key {checkpoint.key_id}"
        return trusted, ""

    def _check_pinned_entry(self, checkpoint: Checkpoint, name: str) -> None:
        index, seq = self.index, checkpoint.seq
        if not index.seqs or seq > index.seqs[-1]:
            end = f"ends at entry {index.seqs[-1]}" if index.seqs else "is empty"
            self.findings.add(
                index.next_seq,
                "truncated",
                f"the log {end} but the {name} (signed {checkpoint.ts}) shows it had more",
            )
            return
        at = index.at_seq(seq)
        if at is not None and index.hashes[at] == checkpoint.hash:
            return
        self._pinned_entry_differs(checkpoint, name, at)

    def _pinned_entry_differs(self, checkpoint: Checkpoint, name: str, at: int | None) -> None:
        seq = checkpoint.seq
        moved_to = self.index.position.get(checkpoint.hash)
        if moved_to is not None:
            new_seq = self.index.seqs[moved_to]
            if self._explained_move(max(seq, new_seq)):
                return
            kind: ProblemKind = "inserted" if new_seq > seq else "deleted"
            self.findings.add(seq, kind, f"the entry pinned by the {name} is now entry {new_seq}")
        elif at is None:
            if not any(seq in missing for missing in self.findings.missing):
                self.findings.add(seq, "deleted", f"entry {seq}, pinned by the {name}, is missing")
        else:
            self._rewritten(checkpoint, name, at)

    def _explained_move(self, high: int) -> bool:
        """Whether the walk reported a problem at or before ``high`` that moves entries."""
        findings = self.findings
        return findings.has(_LINK_KINDS, up_to_seq=high) or any(
            seq <= high for seq in findings.renumbered
        )

    def _rewritten(self, checkpoint: Checkpoint, name: str, at: int) -> None:
        seq = checkpoint.seq
        self.findings.add(
            seq,
            "modified",
            f"entry {seq} does not match the {name} (signed {checkpoint.ts}): it was "
            "rewritten together with its hash",
        )
        if at + 1 < len(self.index.seqs):
            next_seq = self.index.seqs[at + 1]
            if self.findings.dangling.get(next_seq) == checkpoint.hash:
                # The next entry still links to the original: its broken link is this rewrite.
                self.findings.drop("deleted", next_seq, next_seq)


def _entries(number: int) -> str:
    return f"{number} entry" if number == 1 else f"{number} entries"
