"""Standard Webhooks signatures, checked by the reference library (``standardwebhooks``)."""

from __future__ import annotations

import time

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from lockgate.events import signing

OLD = signing.make_secret(b"o" * 32)
NEW = signing.make_secret(b"n" * 32)
BODY = b'{"type":"behavior.changed","version":1}'


def test_a_signature_verifies_with_the_reference_library() -> None:
    now = int(time.time())
    headers = signing.headers([NEW], "evt_1", now, BODY)
    assert Webhook(NEW).verify(BODY, headers) == {"type": "behavior.changed", "version": 1}
    assert headers["webhook-timestamp"] == str(now)


def test_during_a_rotation_both_secrets_verify() -> None:
    headers = signing.headers([NEW, OLD], "evt_1", int(time.time()), BODY)
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert Webhook(NEW).verify(BODY, headers)
    assert Webhook(OLD).verify(BODY, headers)


def test_another_secret_or_body_does_not_verify() -> None:
    headers = signing.headers([NEW], "evt_1", int(time.time()), BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(OLD).verify(BODY, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(NEW).verify(BODY + b" ", headers)


@pytest.mark.parametrize(
    ("secret", "valid"),
    [
        (NEW, True),
        ("whsec_" + "A" * 8, False),  # too short
        ("nope_" + NEW[6:], False),
        ("whsec_!!!!", False),
    ],
    ids=["issued", "short", "prefix", "not-base64"],
)
def test_valid_secret(secret: str, valid: bool) -> None:
    assert signing.valid_secret(secret) is valid
