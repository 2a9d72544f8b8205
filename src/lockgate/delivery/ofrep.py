"""OFREP (OpenFeature Remote Evaluation Protocol): requests and responses, no I/O.

The routes in :mod:`lockgate.api.routes.ofrep` parse a request body with
:func:`parse_request`, evaluate with :mod:`lockgate.delivery.remote` and answer with
:func:`single` or :func:`bulk`. Reasons, error codes and metadata are OpenFeature's
(:mod:`lockgate.sdk.openfeature_terms`); docs/openfeature.md documents the mapping.

A result that defers to the caller's default (a flag that is off, or fails a prerequisite,
with ``off_variation: null``) is a success without ``value``, with ``variant: null``:
OFREP's "code default" response, which tells the provider to use the default in the code.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from lockgate import strict_json
from lockgate.engine import ErrorCode, EvaluationDetail
from lockgate.sdk.openfeature_terms import (
    TARGETING_KEY,
    error_code,
    error_message,
    flag_metadata,
    lockgate_context,
    reason,
)

__all__ = [
    "OfrepRequestError",
    "bulk",
    "encode",
    "etag",
    "etag_matches",
    "evaluation",
    "parse_request",
    "single",
]


class OfrepRequestError(Exception):
    """A request OFREP answers with ``400``: an unreadable body or an invalid context."""

    def __init__(self, code: str, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details

    def body(self, key: str | None = None) -> dict[str, Any]:
        """The failure body: per flag (with ``key``) or for a bulk request (without)."""
        body: dict[str, Any] = {} if key is None else {"key": key}
        return body | {"errorCode": self.code, "errorDetails": self.details}


# -- requests ----------------------------------------------------------------------------


def parse_request(body: bytes) -> dict[str, Any]:
    """The lockgate context of an OFREP request body ``{"context": {...}}``.

    OFREP's schema requires ``context`` (an object, possibly empty); other members are
    ignored. The body is read strictly (:mod:`lockgate.strict_json`). Raises
    :class:`OfrepRequestError` (``PARSE_ERROR`` or ``INVALID_CONTEXT``).
    """
    try:
        data = strict_json.loads(body)
    except strict_json.StrictJsonError as exc:
        raise OfrepRequestError("PARSE_ERROR", f"{exc.field} {exc.message}") from None
    except (ValueError, RecursionError):
        raise OfrepRequestError("PARSE_ERROR", "the request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise OfrepRequestError("PARSE_ERROR", "the request body must be a JSON object")
    if "context" not in data:
        raise OfrepRequestError("INVALID_CONTEXT", "'context' is required (an object)")
    context = data["context"]
    if not isinstance(context, dict):
        raise OfrepRequestError("INVALID_CONTEXT", "'context' must be a JSON object")
    return _context(context)


def _context(context: dict[str, Any]) -> dict[str, Any]:
    targeting_key = context.pop(TARGETING_KEY, None)
    if targeting_key is not None and not isinstance(targeting_key, str):
        raise OfrepRequestError("INVALID_CONTEXT", f"'{TARGETING_KEY}' must be a string")
    return lockgate_context(context, targeting_key)


# -- responses ---------------------------------------------------------------------------


def _failure(key: str, detail: EvaluationDetail) -> dict[str, Any]:
    return {"key": key, "errorCode": error_code(detail), "errorDetails": error_message(key, detail)}


def _success(key: str, detail: EvaluationDetail) -> dict[str, Any]:
    if detail.variation is None:
        # The caller's default applies: no value. ``variant`` is present, as null, because
        # the standard OFREP provider for Python reads it unconditionally.
        return {
            "key": key,
            "reason": reason(detail),
            "variant": None,
            "metadata": flag_metadata(detail),
        }
    return {
        "key": key,
        "value": detail.value,
        "reason": reason(detail),
        "variant": detail.variation,
        "metadata": flag_metadata(detail),
    }


def evaluation(key: str, detail: EvaluationDetail) -> dict[str, Any]:
    """One flag's entry: a success or a failure body."""
    return _success(key, detail) if detail.error_code is None else _failure(key, detail)


def single(key: str, detail: EvaluationDetail) -> tuple[int, dict[str, Any]]:
    """Status and body for ``POST /ofrep/v1/evaluate/flags/{key}``."""
    if detail.error_code is None:
        return 200, _success(key, detail)
    status = 404 if detail.error_code is ErrorCode.FLAG_NOT_FOUND else 400
    return status, _failure(key, detail)


def bulk(results: Mapping[str, EvaluationDetail]) -> dict[str, Any]:
    """Body for ``POST /ofrep/v1/evaluate/flags``: every flag, failures inside the list."""
    return {"flags": [evaluation(key, results[key]) for key in sorted(results)]}


def encode(body: Mapping[str, Any]) -> bytes:
    """The response bytes (compact JSON), as hashed by :func:`etag`."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def etag(content: bytes) -> str:
    """A strong entity tag of a bulk response's content.

    It depends on the evaluated results only, so it changes with the context, the key's
    visibility and any change that alters a value, and not with unrelated commits.
    """
    return '"' + hashlib.sha256(content).hexdigest()[:32] + '"'


def etag_matches(if_none_match: str | None, tag: str) -> bool:
    """Whether ``If-None-Match`` names ``tag`` (weak comparison, ``*`` matches)."""
    if not if_none_match:
        return False
    tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
    return "*" in tags or tag in tags
