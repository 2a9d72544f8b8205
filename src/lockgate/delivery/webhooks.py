"""Webhook delivery: the sender (one signed HTTP attempt) and the dispatcher (the loop).

Each attempt checks the target again — resolving its host and refusing private addresses
unless ``webhook_allow_private_targets`` — and connects to the address it checked, with
the original host in ``Host`` (and in TLS SNI and certificate checks). Redirects are never
followed: a ``3xx`` answer is a failed attempt like any other. Every replica runs a
dispatcher; the outbox's leases keep them from sending the same attempt twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from anyio import to_thread

from lockgate import __version__
from lockgate.control.base import Services
from lockgate.control.evidence import webhook_outbox
from lockgate.control.evidence.webhook_outbox import Claimed
from lockgate.control.evidence.webhook_targets import check_target
from lockgate.events import signing
from lockgate.events.schedule import DeliveryPolicy, parse_retry_after
from lockgate.events.targets import Target, TargetProblem
from lockgate.store.db import is_unavailable

__all__ = ["Attempt", "WebhookDispatcher", "WebhookSender"]

log = logging.getLogger("lockgate.webhooks")
MIN_GAP = 0.05
"""Seconds between two looks for due deliveries, however often commits wake the sender."""


@dataclass(frozen=True)
class Attempt:
    status: int | None
    error: str = ""
    retry_after: float | None = None


def _host_header(target: Target) -> str:
    host = f"[{target.host}]" if ":" in target.host else target.host
    default = 443 if target.scheme == "https" else 80
    return host if target.port == default else f"{host}:{target.port}"


class WebhookSender:
    """Sends one signed attempt of a delivery."""

    def __init__(self, policy: DeliveryPolicy) -> None:
        self.policy = policy
        self.client = httpx.Client(
            follow_redirects=False, timeout=policy.timeout_seconds, trust_env=False
        )

    def close(self) -> None:
        self.client.close()

    def send(self, claimed: Claimed) -> Attempt:
        try:
            target, addresses = check_target(
                claimed.url, allow_private=self.policy.allow_private_targets
            )
        except TargetProblem as exc:
            return Attempt(None, str(exc))
        headers = signing.headers(claimed.secrets, claimed.event_id, int(time.time()), claimed.body)
        headers |= {
            "content-type": "application/json",
            "user-agent": f"lockgate/{__version__}",
            "host": _host_header(target),
        }
        extensions = {}
        if target.scheme == "https" and target.literal is None:
            extensions["sni_hostname"] = target.host
        request = self.client.build_request(
            "POST",
            target.url_for(str(addresses[0])),
            content=claimed.body,
            headers=headers,
            extensions=extensions,
        )
        try:
            response = self.client.send(request, stream=True)
        except httpx.TimeoutException:
            return Attempt(None, f"no answer within {self.policy.timeout_seconds:g} s")
        except httpx.HTTPError as exc:
            return Attempt(None, f"{type(exc).__name__}: {exc}")
        response.close()  # the body is never read
        status = response.status_code
        if 200 <= status < 300:
            return Attempt(status)
        wait = parse_retry_after(response.headers.get("retry-after"), datetime.now(UTC))
        return Attempt(status, f"answered {status}", wait)


class WebhookDispatcher:
    """Claims due deliveries, sends them (a few at a time), records each answer."""

    def __init__(
        self, services: Services, sender: WebhookSender, *, batch: int = 20, workers: int = 4
    ) -> None:
        self.services = services
        self.sender = sender
        self.batch = batch
        self.workers = workers
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def run_once(self) -> int:
        """Send what is due now; how many attempts were made."""
        claimed = webhook_outbox.claim_due(self.services, limit=self.batch)
        if not claimed:
            return 0
        with ThreadPoolExecutor(max_workers=min(self.workers, len(claimed))) as pool:
            attempts = list(pool.map(self.sender.send, claimed))
        for item, attempt in zip(claimed, attempts, strict=True):
            outcome = webhook_outbox.record_attempt(
                self.services,
                item,
                status=attempt.status,
                error=attempt.error,
                retry_after=attempt.retry_after,
            )
            log.info("webhook delivery %s (%s): %s", item.id, item.event_id, outcome.value)
        return len(claimed)

    def wake(self) -> None:
        """Look for due deliveries now (called after commits that queued some)."""
        loop, event = self._loop, self._wake
        if loop is not None and event is not None:
            with contextlib.suppress(RuntimeError):  # the loop has closed
                loop.call_soon_threadsafe(event.set)

    async def run_forever(self, interval: float) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        with contextlib.suppress(Exception):  # the database may be away: leases run out then
            await to_thread.run_sync(webhook_outbox.release_stale_leases, self.services)
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), interval)
            self._wake.clear()
            try:
                while await to_thread.run_sync(self.run_once) >= self.batch:
                    pass
            except Exception as exc:
                if is_unavailable(exc):
                    log.warning("webhook delivery paused: the database is unavailable")
                else:
                    log.exception("webhook delivery failed")
            # Wake-ups that arrive meanwhile are served together: under a burst of changes
            # the sender looks a few times a second, not once per commit.
            await asyncio.sleep(MIN_GAP)
