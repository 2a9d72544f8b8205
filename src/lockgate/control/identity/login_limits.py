"""Throttling of password guesses, per claimed username and per client address.

Every attempt is counted as a failure *before* the password is checked (and forgiven if
it turns out right), so concurrent guesses cannot slip past the limit. Once a key holds
``max_failures`` failures younger than ``window_seconds``, attempts for it are refused
with :class:`RateLimited` (even with the right password) until the oldest of those ages
out.

The state lives in memory, per process, with at most ``max_keys`` keys: a restart
forgets it, each replica counts separately, and when the table is full the least
recently touched key is dropped (expired keys first). The audit log keeps the durable
record of every failure.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from lockgate.errors import RateLimited

__all__ = ["Attempt", "LoginLimiter", "address_key", "user_key"]


def user_key(username: str) -> str:
    return "user:" + username.lower()


def address_key(address: str) -> str:
    return "addr:" + address


@dataclass(frozen=True)
class Attempt:
    """An attempt in progress: its provisional failure is on each of ``keys``."""

    keys: tuple[str, ...]
    ticket: int


class LoginLimiter:
    def __init__(
        self,
        max_failures: int,
        window_seconds: int,
        *,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures  # 0 disables the limit
        self.window = float(window_seconds)
        self.max_keys = max_keys
        self.clock = clock
        self._failures: OrderedDict[str, deque[tuple[float, int]]] = OrderedDict()
        self._tickets = itertools.count(1)
        self._lock = threading.Lock()

    def begin(self, keys: Sequence[str]) -> Attempt:
        """Count an attempt on ``keys``, or raise :class:`RateLimited` if one is locked out."""
        if self.max_failures <= 0:
            return Attempt((), 0)
        with self._lock:
            now = self.clock()
            wait = max((self._wait(key, now) for key in keys), default=0.0)
            if wait > 0:
                raise RateLimited(
                    "too many failed login attempts; try again later",
                    retry_after=max(1, math.ceil(wait)),
                )
            ticket = next(self._tickets)
            for key in keys:
                self._entries(key, now).append((now, ticket))
            return Attempt(tuple(keys), ticket)

    def succeeded(self, attempt: Attempt, clear: Sequence[str] = ()) -> None:
        """Forgive the attempt's provisional failure, and every failure on ``clear``."""
        with self._lock:
            for key in attempt.keys:
                entries = self._failures.get(key)
                if entries is not None:
                    kept = [e for e in entries if e[1] != attempt.ticket]
                    self._failures[key] = deque(kept)
            for key in clear:
                self._failures.pop(key, None)

    def locked_out(self, key: str) -> bool:
        with self._lock:
            return self._wait(key, self.clock()) > 0

    def __len__(self) -> int:
        return len(self._failures)

    def _wait(self, key: str, now: float) -> float:
        """Seconds until ``key`` may try again (0: now)."""
        entries = self._failures.get(key)
        if not entries or self.max_failures <= 0:
            return 0.0
        while entries and entries[0][0] <= now - self.window:
            entries.popleft()
        if len(entries) < self.max_failures:
            return 0.0
        return entries[-self.max_failures][0] + self.window - now

    def _entries(self, key: str, now: float) -> deque[tuple[float, int]]:
        entries = self._failures.get(key)
        if entries is None:
            if len(self._failures) >= self.max_keys:
                self._make_room(now)
            entries = self._failures[key] = deque()
        self._failures.move_to_end(key)
        return entries

    def _make_room(self, now: float) -> None:
        expired = [k for k, e in self._failures.items() if not e or e[-1][0] <= now - self.window]
        for key in expired:
            del self._failures[key]
        while len(self._failures) >= self.max_keys:
            self._failures.popitem(last=False)
