"""The lockgate Python SDK (standard library only; see docs/sdk.md).

Kept in sync with a lockgate server, evaluating locally::

    with Client("lgs_...", "https://flags.example.com", backup_path="flags.json") as client:
        mode = client.mode("checkout-agent", {"key": "user-42", "plan": "enterprise"})
        if mode.allows_writes: ...

Local evaluation from a snapshot (bootstrap or offline mode)::

    client = LockgateClient.from_file("snapshot.json")
"""

from lockgate.engine import ErrorCode, EvaluationDetail, Mode, Reason, SnapshotError
from lockgate.engine.tools import RiskClass, ToolDecision, ToolOutcome, ToolReason
from lockgate.sdk.approvals import ApprovalDecision, ApprovalHandle, ApprovalStatus
from lockgate.sdk.backoff import BackoffPolicy
from lockgate.sdk.client import LockgateClient, read_snapshot_file
from lockgate.sdk.networked import Client, SyncTuning
from lockgate.sdk.state import SyncState
from lockgate.sdk.tools import ToolDeniedError

__all__ = [
    "ApprovalDecision",
    "ApprovalHandle",
    "ApprovalStatus",
    "BackoffPolicy",
    "Client",
    "ErrorCode",
    "EvaluationDetail",
    "LockgateClient",
    "Mode",
    "Reason",
    "RiskClass",
    "SnapshotError",
    "SyncState",
    "SyncTuning",
    "ToolDecision",
    "ToolDeniedError",
    "ToolOutcome",
    "ToolReason",
    "read_snapshot_file",
]
