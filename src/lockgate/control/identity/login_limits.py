"""Throttling of password guesses, per (client address, username) and per username.

An attempt counts on two keys (:func:`login_keys`): the pair of the client's address and
the claimed username, locked after ``max_failures`` failures, and the username alone,
locked after ``max_user_failures`` from any addresses. Nothing is counted per address
alone, so people sharing one address (a NAT, a proxy) do not lock each other out; a
guesser spreading over many addresses still meets the username's limit.

Every attempt is counted as a failure *before* the password is checked (and forgiven if
it turns out right), so concurrent guesses cannot slip past the limit. Once a key holds
its limit of failures younger than ``window_seconds``, attempts for it are refused with
:class:`LockedOut` (even with the right password) until the oldest of those ages out.

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

__all__ = ["Attempt", "LockedOut", "LoginLimiter", "login_keys", "user_key"]

_USER = "user:"


def user_key(username: str) -> str:
    return _USER + username.lower()


def pair_key(address: str, username: str) -> str:
    return f"pair:{address}|{username.lower()}"


def login_keys(username: str, address: str) -> tuple[str, str]:
    """The keys an attempt counts on: (address, username), then the username."""
    return pair_key(address, username), user_key(username)


class LockedOut(RateLimited):
    """A refused attempt; ``first`` is true once per lock-out (when it should be audited)."""

    def __init__(self, retry_after: int, keys: tuple[str, ...], *, first: bool) -> None:
        super().__init__("too many failed login attempts; try again later", retry_after)
        self.keys = keys
        self.first = first


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
        max_user_failures: int | None = None,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures  # 0 disables the limit
        self.max_user_failures = (
            4 * max_failures if max_user_failures is None else max_user_failures
        )
        self.window = float(window_seconds)
        self.max_keys = max_keys
        self.clock = clock
        self._failures: OrderedDict[str, deque[tuple[float, int]]] = OrderedDict()
        self._tickets = itertools.count(1)
        self._lock = threading.Lock()
        self._refused: dict[str, float] = {}  # key -> end of the lock-out already reported

    def begin(self, keys: Sequence[str]) -> Attempt:
        """Count an attempt on ``keys``, or raise :class:`LockedOut` if one is locked out."""
        if self.max_failures <= 0:
            return Attempt((), 0)
        with self._lock:
            now = self.clock()
            until = {key: self._until(key, now) for key in keys}
            locked = tuple(key for key, end in until.items() if end > now)
            if locked:
                first = any(self._refused.get(key) != until[key] for key in locked)
                for key in locked:
                    self._refused[key] = until[key]
                if len(self._refused) > self.max_keys:
                    self._refused = {k: t for k, t in self._refused.items() if t > now}
                wait = max(until.values()) - now
                raise LockedOut(max(1, math.ceil(wait)), locked, first=first)
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

    def _limit(self, key: str) -> int:
        return self.max_user_failures if key.startswith(_USER) else self.max_failures

    def _wait(self, key: str, now: float) -> float:
        """Seconds until ``key`` may try again (0: now)."""
        return max(0.0, self._until(key, now) - now)

    def _until(self, key: str, now: float) -> float:
        """When ``key``'s lock-out ends (a time not after ``now`` when it is not locked)."""
        entries = self._failures.get(key)
        limit = self._limit(key)
        if not entries or self.max_failures <= 0 or limit <= 0:
            return now
        while entries and entries[0][0] <= now - self.window:
            entries.popleft()
        if len(entries) < limit:
            return now
        return entries[-limit][0] + self.window

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
