"""Anchors: each signed checkpoint published outside the database, to an append-only file.

Someone who controls the database (and the signing key beside it) can rewrite the newest
entries, recompute their hashes, move the head and re-sign or delete checkpoints: the
database then verifies. A copy of each checkpoint that the database owner cannot rewrite
shows it: ``lockgate audit verify --anchors FILE`` checks the chain against every
checkpoint in the file, signed by the key the file carries.

The file is JSON lines in the format of ``lockgate audit checkpoints export`` (with the
public key), appended to (``O_APPEND``, an exclusive ``flock``, ``fsync``) and never
rewritten. Keep it in another directory than the data, ideally on another host or an
append-only mount (``chattr +a``); docs/audit.md says what it protects against.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path

from sqlalchemy import Connection

from lockgate.errors import LockgateError
from lockgate.store.checkpoints import Checkpoint, Signer, public_key_pem, read_checkpoints
from lockgate.store.db import make_private_dir

__all__ = ["AnchorFile", "AnchorSettingError", "check_anchor_path"]

_log = logging.getLogger("lockgate.audit")
_TAIL = 16_384  # bytes read from the end to find the last published seq (lines are ~500)


class AnchorSettingError(LockgateError):
    """The anchor file cannot be used where it was configured."""

    code = "invalid_setting"
    title = "Invalid setting"


def check_anchor_path(anchor: str | Path, data_dir: str | Path) -> Path:
    """The anchor file's absolute path; refused inside the data directory, which whoever
    can rewrite the database can usually rewrite too."""
    path = Path(anchor).expanduser().resolve()
    data = Path(data_dir).expanduser().resolve()
    if path == data or data in path.parents:
        raise AnchorSettingError(
            f"audit_anchor_file {path} is inside data_dir {data}; "
            "put it in another directory (ideally another host or an append-only mount)"
        )
    return path


class AnchorFile:
    """Appends checkpoints, with the signer's public key, to one JSON-lines file."""

    def __init__(self, path: Path, signer: Signer) -> None:
        self.path = path
        self._pem = public_key_pem(signer.public_key)
        self._key_id = signer.key_id

    def publish(self, checkpoints: Iterable[Checkpoint]) -> int:
        """Append ``checkpoints`` not yet in the file; how many were appended.

        Never raises: the change the checkpoints belong to is committed already, and a
        failure here is logged (the next publication catches up, see :meth:`catch_up`).
        """
        try:
            return self._append(list(checkpoints))
        except OSError:
            _log.exception("cannot append audit checkpoints to the anchor file %s", self.path)
            return 0

    def catch_up(self, conn: Connection) -> int:
        """Append every stored checkpoint newer than the file's last one (at start-up)."""
        return self.publish(read_checkpoints(conn))

    def _append(self, checkpoints: list[Checkpoint]) -> int:
        make_private_dir(self.path.parent)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "r+b") as out:
            fcntl.flock(out, fcntl.LOCK_EX)  # several replicas may anchor to one file
            size = out.seek(0, os.SEEK_END)
            out.seek(max(0, size - _TAIL))
            tail = out.read()
            last = _last_seq(tail)
            lines = [
                self._line(checkpoint)
                for checkpoint in sorted(checkpoints, key=lambda c: c.seq)
                if checkpoint.seq > last
            ]
            if lines:
                torn = b"\n" if tail and not tail.endswith(b"\n") else b""  # a crash mid-line
                out.write(torn + b"".join(lines))
                out.flush()
                os.fsync(out.fileno())
        return len(lines)

    def _line(self, checkpoint: Checkpoint) -> bytes:
        pem = self._pem if checkpoint.key_id == self._key_id else checkpoint.public_key_pem
        data = checkpoint.to_dict() | {"public_key_pem": pem}
        return (json.dumps(data, sort_keys=True) + "\n").encode()


def _last_seq(tail: bytes) -> int:
    """The seq of the last readable line in the file's tail (0 for none)."""
    for line in reversed(tail.splitlines()):
        try:
            seq = json.loads(line).get("seq")
        except (ValueError, AttributeError):
            continue  # blank, cut short by a crash, or the start of the tail window
        if isinstance(seq, int) and not isinstance(seq, bool):
            return seq
    return 0
