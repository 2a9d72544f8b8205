"""The lockgate Python SDK.

Local evaluation from a snapshot (bootstrap or offline mode)::

    client = LockgateClient.from_file("snapshot.json")
    mode = client.mode("checkout-agent", {"key": "user-42", "plan": "enterprise"})
    if mode.allows_writes: ...
"""

from lockgate.engine import ErrorCode, EvaluationDetail, Mode, Reason, SnapshotError
from lockgate.sdk.client import LockgateClient, read_snapshot_file

__all__ = [
    "ErrorCode",
    "EvaluationDetail",
    "LockgateClient",
    "Mode",
    "Reason",
    "SnapshotError",
    "read_snapshot_file",
]
