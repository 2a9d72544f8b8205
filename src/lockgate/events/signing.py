"""Standard Webhooks signatures (https://www.standardwebhooks.com).

A secret is ``whsec_`` followed by base64 of random bytes. Each request carries
``webhook-id`` (the event's id, the same in every attempt: receivers deduplicate on it),
``webhook-timestamp`` (integer seconds of the attempt) and ``webhook-signature``: one
``v1,<base64 HMAC-SHA256>`` per valid secret, separated by spaces, each over
``{id}.{timestamp}.{body}``. During a rotation both the new and the previous secret sign.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable

__all__ = ["SECRET_PREFIX", "headers", "make_secret", "sign", "valid_secret"]

SECRET_PREFIX = "whsec_"  # noqa: S105 - the standard prefix, not a secret
SECRET_BYTES = 32


def make_secret(random_bytes: bytes) -> str:
    """A secret from ``random_bytes`` (the caller draws them: ``secrets.token_bytes``)."""
    return SECRET_PREFIX + base64.b64encode(random_bytes).decode("ascii")


def _key(secret: str) -> bytes:
    text = secret.removeprefix(SECRET_PREFIX)
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def valid_secret(secret: str) -> bool:
    """Whether ``secret`` is ``whsec_`` + base64 of 24 to 64 bytes."""
    if not secret.startswith(SECRET_PREFIX):
        return False
    try:
        return 24 <= len(_key(secret)) <= 64
    except (binascii.Error, ValueError):
        return False


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """One ``v1,<base64>`` signature."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def headers(secrets: Iterable[str], message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers, signed with every secret given (newest first)."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(sign(s, message_id, timestamp, body) for s in secrets),
    }
