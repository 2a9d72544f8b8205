"""Redaction rules: drop, hash with the environment's salt, keep; private wins."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest

from lockgate.privacy import RedactionPolicy, Rule, loosened, parse_settings, redact

SALT = "s3cret-salt"


def policy(private: tuple[str, ...] = (), rules: dict[str, str] | None = None) -> RedactionPolicy:
    made, problems = parse_settings(
        {"private_attributes": list(private), "rules": rules or {}}, SALT
    )
    assert made is not None, problems
    return made


def test_a_private_attribute_is_dropped_and_named() -> None:
    kept, dropped = redact({"key": "u1", "email": "a@b.c", "plan": "pro"}, policy(("email",)))
    assert kept == {"key": "u1", "plan": "pro"}
    assert dropped == ["email"]


def test_hash_is_hmac_sha256_of_the_canonical_json_under_the_salt() -> None:
    kept, dropped = redact(
        {"email": "a@b.c", "n": 42}, policy(("email",), {"email": "hash", "n": "hash"})
    )
    expected = hmac.new(SALT.encode(), b'"a@b.c"', hashlib.sha256).hexdigest()
    assert kept["email"] == "hmac:" + expected
    assert kept["n"] != policy().hash("42")  # 42 and "42" differ
    assert dropped == []


def test_a_hash_already_made_is_not_hashed_again() -> None:
    rules = policy(("email",), {"email": "hash"})
    once, _ = redact({"email": "a@b.c"}, rules)
    twice, _ = redact(once, rules)
    assert twice == once


def test_rules_apply_to_attributes_that_are_not_private() -> None:
    kept, dropped = redact(
        {"ip": "1.2.3.4", "plan": "pro"}, policy(rules={"ip": "drop", "plan": "keep"})
    )
    assert kept == {"plan": "pro"}
    assert dropped == ["ip"]


def test_private_attributes_added_by_the_sdk_join_the_environment_ones() -> None:
    base = policy(("email",))
    kept, dropped = redact({"email": "x", "phone": "y", "k": 1}, base.with_private(["phone"]))
    assert kept == {"k": 1}
    assert dropped == ["email", "phone"]


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        pytest.param([], "", id="not-an-object"),
        pytest.param({"private": []}, "private", id="unknown-field"),
        pytest.param({"private_attributes": "email"}, "private_attributes", id="names-not-a-list"),
        pytest.param({"private_attributes": [""]}, "private_attributes.0", id="empty-name"),
        pytest.param({"rules": {"email": "encrypt"}}, "rules.email", id="unknown-rule"),
        pytest.param(
            {"private_attributes": ["email"], "rules": {"email": "keep"}},
            "rules.email",
            id="private-kept",
        ),
        pytest.param({"rules": []}, "rules", id="rules-not-an-object"),
    ],
)
def test_bad_settings_name_the_field(settings: Any, field: str) -> None:
    made, problems = parse_settings(settings)
    assert made is None
    assert field in [name for name, _ in problems]


def test_loosened_names_attributes_recorded_more_openly() -> None:
    strict = policy(("email", "phone"), {"ip": "drop"})
    looser = policy(("email",), {"email": "hash"})
    assert loosened(strict, looser) == ["email", "ip", "phone"]
    assert loosened(looser, strict) == []


def test_rule_order_from_strictest() -> None:
    assert [r.strictness for r in (Rule.DROP, Rule.HASH, Rule.KEEP)] == [2, 1, 0]
