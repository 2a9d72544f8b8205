"""Admission of new SDK streams: a cap on open streams and on new streams per second.

After a restart every SDK reconnects; their backoff spreads the attempts out, but a
server that accepted all of them at once would spend its first seconds writing thousands
of snapshots while health checks and API calls wait. A stream beyond either limit is
refused before any work is done for it, with ``503 Service Unavailable`` and a
``Retry-After`` of a few seconds drawn at random (so that the refused SDKs do not come
back together); SDKs wait at least that long and then retry with their own backoff.

- ``max_streams``: open streams this process holds at most (0: no cap);
- ``rate``: new streams accepted per second, with bursts of up to ``rate`` (0: no limit).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable

from starlette.types import Send

__all__ = ["StreamAdmission", "refuse_stream"]

RETRY_AFTER_SPREAD = 5
"""Refused streams are told to come back after 1 to this many seconds."""


class StreamAdmission:
    def __init__(
        self,
        max_streams: int,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        if max_streams < 0 or rate < 0:
            raise ValueError("stream limits must not be negative")
        self.max_streams = max_streams
        self.rate = rate
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 - spreading retries, not secrets
        self._tokens = float(rate)
        self._updated = clock()
        self.refused = 0
        """Streams refused since start (for tests and the benchmark's server log)."""

    def admit(self, open_streams: int) -> str | None:
        """``None`` when one more stream may open now, else why not."""
        if self.max_streams and open_streams >= self.max_streams:
            self.refused += 1
            return f"this server holds its maximum of {self.max_streams} streams"
        if self.rate:
            now = self._clock()
            self._tokens = min(self.rate, self._tokens + (now - self._updated) * self.rate)
            self._updated = now
            if self._tokens < 1:
                self.refused += 1
                return f"more than {self.rate:g} new streams per second"
            self._tokens -= 1
        return None

    def retry_after(self) -> int:
        return 1 + self._rng.randrange(RETRY_AFTER_SPREAD)


async def refuse_stream(send: Send, reason: str, retry_after: int) -> None:
    """Answer a stream request with ``503`` and ``Retry-After`` (a problem document)."""
    body = json.dumps(
        {
            "type": "https://lockgate.dev/problems/streams-busy",
            "title": "Too many streams",
            "status": 503,
            "detail": f"{reason}; retry after {retry_after} s",
            "code": "streams_busy",
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", str(retry_after).encode()),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
