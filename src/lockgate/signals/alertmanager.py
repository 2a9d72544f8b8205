"""Alertmanager's webhook body (version 4), read strictly into alerts.

Alertmanager posts a notification per alert group: ``status`` (``firing`` or
``resolved``), ``alerts`` (each with its own ``status``, ``labels``, ``annotations``,
``startsAt``, ``endsAt``, ``fingerprint``) and the group's common labels. Only what an
alert trigger needs is read; other fields are ignored. An alert without a fingerprint (a
sender other than Alertmanager) gets one from its labels, the way Alertmanager's is a hash
of the label set.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MAX_ALERTS", "Alert", "AlertBodyError", "parse"]

MAX_ALERTS = 1_000
"""Alerts one notification may carry."""
MAX_TEXT = 2_000
"""Characters kept of one label or annotation value (the rest is cut)."""
MAX_LABELS = 100


class AlertBodyError(ValueError):
    """The body is not an Alertmanager notification; ``field`` says where."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Alert:
    status: str
    labels: dict[str, str]
    annotations: dict[str, str] = field(default_factory=dict)
    starts_at: str = ""
    fingerprint: str = ""

    @property
    def name(self) -> str:
        return self.labels.get("alertname", "")

    @property
    def episode(self) -> str:
        """One firing of this alert: its fingerprint and when it started."""
        return f"{self.fingerprint}@{self.starts_at}"[:300]

    def evidence(self) -> dict[str, Any]:
        """What an audit entry records of the alert."""
        return {
            "alertname": self.name,
            "status": self.status,
            "labels": self.labels,
            "annotations": self.annotations,
            "startsAt": self.starts_at,
            "fingerprint": self.fingerprint,
        }


def parse(body: Any) -> list[Alert]:
    """The alerts of a notification; :class:`AlertBodyError` when it is not one."""
    if not isinstance(body, dict):
        raise AlertBodyError("body", "expected Alertmanager's webhook JSON object")
    version = body.get("version", "4")
    if version != "4":
        raise AlertBodyError("version", f"version {version!r} is not supported (4 is)")
    raw = body.get("alerts")
    if not isinstance(raw, list):
        raise AlertBodyError("alerts", "expected a list of alerts")
    if len(raw) > MAX_ALERTS:
        raise AlertBodyError("alerts", f"at most {MAX_ALERTS} alerts")
    group_status = body.get("status", "firing")
    return [_alert(item, f"alerts[{i}]", group_status) for i, item in enumerate(raw)]


def _alert(item: Any, where: str, group_status: Any) -> Alert:
    if not isinstance(item, dict):
        raise AlertBodyError(where, "expected an object")
    status = item.get("status", group_status)
    if status not in ("firing", "resolved"):
        raise AlertBodyError(f"{where}.status", "must be firing or resolved")
    labels = _strings(item.get("labels", {}), f"{where}.labels")
    annotations = _strings(item.get("annotations", {}), f"{where}.annotations")
    starts_at = item.get("startsAt", "")
    if not isinstance(starts_at, str) or len(starts_at) > 64:
        raise AlertBodyError(f"{where}.startsAt", "expected a timestamp")
    fingerprint = item.get("fingerprint")
    if fingerprint is None:
        text = json.dumps(labels, sort_keys=True, separators=(",", ":"))
        fingerprint = hashlib.sha256(text.encode()).hexdigest()[:16]
    if not isinstance(fingerprint, str) or not 0 < len(fingerprint) <= 128:
        raise AlertBodyError(f"{where}.fingerprint", "expected a string of 1 to 128 characters")
    return Alert(status, labels, annotations, starts_at, fingerprint)


def _strings(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise AlertBodyError(where, "expected an object of strings")
    if len(value) > MAX_LABELS:
        raise AlertBodyError(where, f"at most {MAX_LABELS} entries")
    out = {}
    for key, item in value.items():
        if not isinstance(item, str):
            raise AlertBodyError(f"{where}.{key}", "expected a string")
        out[str(key)[:200]] = item[:MAX_TEXT]
    return out
