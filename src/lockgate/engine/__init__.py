"""The pure evaluation engine: standard library only, no I/O, no clock.

One engine, two hosts: the server and the SDK both call :func:`evaluate` on a
:class:`Snapshot` (docs/snapshot-format.md).
"""

from lockgate.engine.codec import decode, dumps, encode, loads
from lockgate.engine.compile import CompiledSnapshot, compile_snapshot
from lockgate.engine.diff import SnapshotDiff, diff
from lockgate.engine.evaluate import evaluate
from lockgate.engine.model import SNAPSHOT_FORMAT, Flag, FlagKind, Segment, Snapshot
from lockgate.engine.modes import Mode
from lockgate.engine.problems import Problem, SnapshotError
from lockgate.engine.result import ErrorCode, EvaluationDetail, Reason
from lockgate.engine.validate import validate

__all__ = [
    "SNAPSHOT_FORMAT",
    "CompiledSnapshot",
    "ErrorCode",
    "EvaluationDetail",
    "Flag",
    "FlagKind",
    "Mode",
    "Problem",
    "Reason",
    "Segment",
    "Snapshot",
    "SnapshotDiff",
    "SnapshotError",
    "compile_snapshot",
    "decode",
    "diff",
    "dumps",
    "encode",
    "evaluate",
    "loads",
    "validate",
]
