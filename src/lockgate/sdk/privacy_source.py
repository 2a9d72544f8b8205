"""The environment's privacy settings, as the SDK learns them (``GET /sdk/v1/privacy``).

Decision records are redacted in the process before they are sent; the rules come from the
environment (its private attributes, per-attribute rules and hashing salt) plus the
client's own private attributes. The settings are read before the first batch is sent and
again whenever the server's answer to a batch names another settings version (the
settings changed), or after ``max_age`` seconds. While they cannot be read, nothing is
sent (records wait in their bounded queue). Standard library only.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from lockgate.privacy import RedactionPolicy, parse_settings
from lockgate.sdk.failover import FailoverTransport
from lockgate.sdk.transport import HttpError

__all__ = ["PRIVACY_PATH", "PrivacySource"]

PRIVACY_PATH = "/sdk/v1/privacy"


class PrivacySource:
    """The current redaction policy of the client's environment, read when needed."""

    def __init__(
        self,
        transport: FailoverTransport,
        logger: logging.Logger,
        *,
        max_age: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._transport = transport
        self._log = logger
        self._max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        self._policy: RedactionPolicy | None = None
        self._version: int | None = None
        self._read_at = 0.0

    @property
    def version(self) -> int | None:
        """The settings version held (``None`` before the first read)."""
        return self._version

    def seen(self, version: object) -> None:
        """The server named settings ``version``: read them again if they differ."""
        if isinstance(version, int) and version != self._version:
            with self._lock:
                self._policy = None

    def policy(self, timeout: float) -> RedactionPolicy | None:
        """The policy, read from the server if not held or too old; ``None`` if unknown."""
        with self._lock:
            fresh = self._clock() - self._read_at < self._max_age
            if self._policy is not None and fresh:
                return self._policy
            try:
                body = self._read(timeout)
            except HttpError as exc:
                self._log.debug("reading the privacy settings failed: HTTP %s", exc.status)
                return None
            policy, problems = parse_settings(
                {k: body.get(k) for k in ("private_attributes", "rules") if k in body},
                str(body.get("salt") or ""),
            )
            if policy is None:
                self._log.warning("the server's privacy settings are not usable: %s", problems)
                return None
            version = body.get("version")
            self._policy = policy
            self._version = version if isinstance(version, int) else None
            self._read_at = self._clock()
            return policy

    def _read(self, timeout: float) -> dict[str, Any]:
        response = self._transport.request("GET", PRIVACY_PATH, timeout=timeout)
        body = json.loads(response.body)
        if not isinstance(body, dict):
            raise HttpError(response.status)
        return body
