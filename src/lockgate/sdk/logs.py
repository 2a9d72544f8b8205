"""The variations in force, on the application's log lines.

A log line written while a request is handled should say which behaviors were evaluated
for that request and what they served, so that "the refund agent misbehaved" can be
matched to "it was in ``draft_only`` for this user". The SDK keeps that in a context
variable; a logging filter and a structlog processor put it on each record.

Usage (the networked :class:`lockgate.sdk.Client` with ``log_variations=True``)::

    client = Client(key, url, log_variations=True)
    logging.getLogger().handlers[0].addFilter(VariationsFilter())

    def handle(request):
        with variations_scope():                      # one scope per request
            mode = client.mode("refund-agent", ctx)   # noted in the scope
            log.info("refund drafted")                # ... lockgate=refund-agent=draft_only

Outside a scope nothing is noted (and nothing grows). Inside one, the last variation each
behavior served is kept (at most :data:`MAX_NOTED` behaviors). Asyncio tasks started
inside a scope share it; threads do not inherit it (open a scope in the thread).

Only behavior keys and variation names are added — never context attributes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from lockgate.engine import EvaluationDetail

__all__ = [
    "MAX_NOTED",
    "VariationsFilter",
    "add_variations",
    "current_variations",
    "note",
    "variations_scope",
]

MAX_NOTED = 64
"""Behaviors noted per scope; later ones are not added (the first ones are kept)."""

_NO_VARIATION = "-"
_scope: ContextVar[dict[str, str] | None] = ContextVar("lockgate_variations", default=None)


@contextmanager
def variations_scope() -> Iterator[dict[str, str]]:
    """A scope (typically one request) in which served variations are noted."""
    noted: dict[str, str] = {}
    token = _scope.set(noted)
    try:
        yield noted
    finally:
        _scope.reset(token)


def note(key: str, detail: EvaluationDetail) -> None:
    """Note that ``key`` served ``detail`` in the current scope (no scope: nothing)."""
    noted = _scope.get()
    if noted is not None and (key in noted or len(noted) < MAX_NOTED):
        noted[key] = detail.variation or _NO_VARIATION


def current_variations() -> Mapping[str, str]:
    """Behavior key → variation served in the current scope (empty outside one)."""
    noted = _scope.get()
    return {} if noted is None else dict(noted)


def _text(noted: Mapping[str, str]) -> str:
    return " ".join(f"{key}={variation}" for key, variation in sorted(noted.items()))


class VariationsFilter(logging.Filter):
    """Adds ``record.lockgate`` (``"refund-agent=draft_only checkout=on"``, sorted by key;
    ``""`` outside a scope) and ``record.lockgate_variations`` (a dict) to every record.

    Attach it to a handler (so records of every logger get it) and use ``%(lockgate)s``
    in the format. It never drops a record.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        noted = current_variations()
        record.lockgate = _text(noted)
        record.lockgate_variations = noted
        return True


def add_variations(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """A structlog processor: adds ``lockgate`` (behavior key → variation) when a scope
    noted any, and leaves the event alone otherwise."""
    noted = current_variations()
    if noted:
        event_dict["lockgate"] = noted
    return event_dict
