"""The SDK client: local evaluation from an in-memory snapshot.

Evaluation never waits on anything: each call reads the current compiled snapshot through
one attribute read (atomic under the interpreter) and evaluates it. Replacing the snapshot
validates and compiles the new one first and then swaps a single reference, so readers see
either the old snapshot or the new one, never a mix, and never block.

Network sync plugs in as a *data source* that calls :meth:`LockgateClient.update`.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from lockgate.engine import (
    CompiledSnapshot,
    EvaluationDetail,
    FlagKind,
    Mode,
    Snapshot,
    SnapshotError,
    decode,
    validate,
)
from lockgate.engine.problems import Problem
from lockgate.engine.result import ErrorCode, Reason
from lockgate.engine.validate import NOTHING_KNOWN, Changes, known_after, unchanged_parts

__all__ = ["LockgateClient", "SnapshotListener"]

Context = Mapping[str, Any]
SnapshotListener = Callable[[Snapshot], None]

_EMPTY = CompiledSnapshot(Snapshot.empty())
_log = logging.getLogger("lockgate.sdk")


class LockgateClient:
    """Evaluates behaviors locally from the latest valid snapshot it has been given."""

    detail: Callable[..., EvaluationDetail]
    """``detail(key, context, default=None)``: value, variation, reason, rule id, error code
    and flag version. Bound directly to the current compiled snapshot's evaluator, so the
    hot path is a single call; before the first snapshot it reports ``PROVIDER_NOT_READY``.
    """

    def __init__(self, snapshot: Snapshot | Mapping[str, Any] | None = None) -> None:
        self._compiled = _EMPTY
        self.detail = self._detail_not_ready
        self._ready = False
        self._lock = threading.Lock()
        self._listeners: list[SnapshotListener] = []
        if snapshot is not None:
            self.update(snapshot)

    # -- construction -------------------------------------------------------------------

    @classmethod
    def from_snapshot(cls, snapshot: Snapshot | Mapping[str, Any]) -> LockgateClient:
        """A client serving ``snapshot`` (a :class:`Snapshot` or its JSON form)."""
        return cls(snapshot)

    @classmethod
    def from_file(cls, path: str | Path) -> LockgateClient:
        """A client serving the snapshot in the JSON file at ``path``."""
        return cls(read_snapshot_file(path))

    # -- snapshot replacement -----------------------------------------------------------

    def update(
        self,
        snapshot: Snapshot | Mapping[str, Any],
        *,
        force: bool = False,
        changes: Changes | None = None,
    ) -> bool:
        """Serve ``snapshot`` from now on.

        Raises :class:`SnapshotError` if it has problems (the current one keeps serving).
        Returns ``False``, changing nothing, when it is older than the one being served,
        unless ``force`` is given. ``changes``, when given, names the flags and segments
        in which ``snapshot`` differs from the one being served (every other one must be
        the same object, as :func:`lockgate.engine.codec.apply_changes` makes them).
        """
        decoded = snapshot if isinstance(snapshot, Snapshot) else decode(snapshot)
        # What is unchanged since the snapshot being served (itself valid) is neither
        # validated nor compiled again: a change costs what the changed flags cost.
        previous = self._compiled if self._ready else None
        if previous is None:
            known, changes = NOTHING_KNOWN, None
        elif changes is not None:
            known = known_after(previous.snapshot, previous.contained(), decoded, changes)
        else:
            known = unchanged_parts(decoded, previous.snapshot)
        problems = validate(decoded, known)
        if problems:
            raise SnapshotError(problems)
        compiled = CompiledSnapshot(decoded, previous, validated=known, changes=changes)
        with self._lock:
            current = self._compiled.snapshot
            if self._ready and decoded.version < current.version and not force:
                return False
            self._compiled = compiled
            self._ready = True
            self.detail = compiled.evaluate
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(decoded)
            except Exception:  # one faulty listener must not stop the others or the update
                _log.exception("update listener %r failed", listener)
        return True

    def on_update(self, listener: SnapshotListener) -> None:
        """Call ``listener(snapshot)`` after each successful :meth:`update`.

        Listeners run on the thread that applied the update (for
        :class:`lockgate.sdk.Client`, the process's stream reader thread, shared by its
        clients: keep them short); exceptions they raise are logged and ignored.
        """
        with self._lock:
            self._listeners.append(listener)

    @property
    def snapshot(self) -> Snapshot:
        return self._compiled.snapshot

    @property
    def ready(self) -> bool:
        """Whether a snapshot has been loaded."""
        return self._ready

    # -- evaluation ---------------------------------------------------------------------

    def _detail_not_ready(
        self, key: str, context: Context, default: Any = None
    ) -> EvaluationDetail:
        return _not_ready(default)

    def variation(self, key: str, context: Context, default: Any = None) -> Any:
        """The value served to ``context`` (``default`` on any error)."""
        if not self._ready:
            return default
        return self._compiled.evaluate(key, context, default).value

    def bool_variation(self, key: str, context: Context, default: bool) -> bool:
        return self._typed(key, context, default, FlagKind.BOOLEAN).value  # type: ignore[no-any-return]

    def string_variation(self, key: str, context: Context, default: str) -> str:
        return self._typed(key, context, default, FlagKind.STRING).value  # type: ignore[no-any-return]

    def number_variation(self, key: str, context: Context, default: float) -> float:
        return self._typed(key, context, default, FlagKind.NUMBER).value  # type: ignore[no-any-return]

    def json_variation(self, key: str, context: Context, default: Any) -> Any:
        return self._typed(key, context, default, FlagKind.JSON).value

    def typed_detail(
        self, key: str, context: Context, default: Any, kind: FlagKind
    ) -> EvaluationDetail:
        """:meth:`detail`, reporting ``TYPE_MISMATCH`` unless the flag is of ``kind``."""
        return self._typed(key, context, default, kind)

    def mode(self, key: str, context: Context, default: Mode = Mode.OFF) -> Mode:
        """The authority mode of a mode behavior; ``default`` (``off``) on any error."""
        value = self._typed(key, context, default.value, FlagKind.MODE).value
        return Mode.parse(value) or default

    def mode_detail(self, key: str, context: Context, default: Mode = Mode.OFF) -> EvaluationDetail:
        return self._typed(key, context, default.value, FlagKind.MODE)

    def _typed(self, key: str, context: Context, default: Any, kind: FlagKind) -> EvaluationDetail:
        if not self._ready:
            return _not_ready(default)
        return self._compiled.evaluate(key, context, default, kind)

    def all_details(
        self, context: Context, *, client_visible_only: bool = False
    ) -> dict[str, EvaluationDetail]:
        """Every flag evaluated for ``context`` (for bootstrapping front ends)."""
        compiled = self._compiled
        return {
            key: compiled.evaluate(key, context)
            for key, flag in compiled.flags.items()
            if flag.client_visible or not client_visible_only
        }


def _not_ready(default: Any) -> EvaluationDetail:
    return EvaluationDetail(default, None, Reason.ERROR, None, ErrorCode.PROVIDER_NOT_READY, None)


def read_snapshot_file(path: str | Path) -> Snapshot:
    """Read and decode a snapshot file; :class:`SnapshotError` says what is wrong."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SnapshotError([Problem("$", f"cannot read {path}: {exc.strerror or exc}")]) from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise SnapshotError([Problem("$", f"{path} is not valid JSON: {exc}")]) from None
    return decode(data)
