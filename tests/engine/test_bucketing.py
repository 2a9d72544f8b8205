"""Percentage bucketing (ADR 0002): exact outputs, determinism, distribution, monotonicity."""

from __future__ import annotations

import hashlib
import math
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lockgate.engine import ErrorCode, Reason, compile_snapshot, decode
from lockgate.engine.bucketing import bucket, bucket_value
from tests.engine.factories import flags_doc, split, string_flag

SPACE = 100_000
KEYS = 100_000


def reference_bucket(salt: str, value: str) -> int:
    """The formula of docs/snapshot-format.md, written out independently of the engine."""
    digest = hashlib.sha256((salt + "/" + value).encode("utf-8")).digest()
    return (int.from_bytes(digest[:8], byteorder="big", signed=False) * 100000) >> 64


# -- pinned outputs ----------------------------------------------------------------------

# Pinned by ADR 0002: computed once with the formula in docs/snapshot-format.md. Changing
# any of these reshuffles every rollout in production and needs a new ADR.
PINNED = [
    pytest.param("split-50", "user-0", 47531, id="split-50/user-0"),
    pytest.param("split-50", "user-2", 54626, id="split-50/user-2"),
    pytest.param("split-50", "user-183653", 49999, id="last-bucket-below-half"),
    pytest.param("split-50", "user-306526", 50000, id="first-bucket-of-upper-half"),
    pytest.param("split-50", "ユーザー-1", 67828, id="utf8-value"),
    pytest.param("checkout-agent", "user-42", 64695, id="checkout-agent/user-42"),
    pytest.param("checkout-agent", "42", 47631, id="integer-as-decimal"),
    pytest.param("salt", "acct-7", 33270, id="salt/acct-7"),
    pytest.param("", "", 54050, id="empty-salt-and-value"),
]


@pytest.mark.parametrize(("salt", "value", "expected"), PINNED)
def test_pinned_bucket(salt: str, value: str, expected: int) -> None:
    assert bucket(salt, value) == expected
    assert reference_bucket(salt, value) == expected


def test_separator_is_part_of_the_hash_input() -> None:
    """``a/b`` + ``c`` and ``a`` + ``b/c`` hash the same text, hence the same bucket."""
    assert bucket("a/b", "c") == bucket("a", "b/c") == 84146


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("user-1", "user-1", id="string-as-is"),
        pytest.param("", "", id="empty-string"),
        pytest.param(42, "42", id="int-decimal"),
        pytest.param(-7, "-7", id="negative-int"),
        pytest.param(True, None, id="bool-is-missing"),
        pytest.param(4.0, None, id="float-is-missing"),
        pytest.param(None, None, id="none-is-missing"),
        pytest.param(["u1"], None, id="list-is-missing"),
        pytest.param({"k": "v"}, None, id="dict-is-missing"),
    ],
)
def test_bucket_value(value: object, expected: str | None) -> None:
    assert bucket_value(value) == expected


def test_engine_buckets_integers_like_their_decimal_string() -> None:
    doc = flags_doc(string_flag("checkout-agent", default=split(("a", 47632), ("b", 52368))))
    compiled = compile_snapshot(decode(doc))
    # bucket 47631 is the last bucket of the first range [0, 47632).
    assert compiled.evaluate("checkout-agent", {"key": 42}).variation == "a"
    assert compiled.evaluate("checkout-agent", {"key": "42"}).variation == "a"
    doc = flags_doc(string_flag("checkout-agent", default=split(("a", 47631), ("b", 52369))))
    compiled = compile_snapshot(decode(doc))
    assert compiled.evaluate("checkout-agent", {"key": 42}).variation == "b"


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(True, id="bool"),
        pytest.param(1.5, id="float"),
        pytest.param(None, id="null"),
        pytest.param(["u1"], id="list"),
    ],
)
def test_engine_split_on_unbucketable_value_is_targeting_key_missing(value: object) -> None:
    compiled = compile_snapshot(
        decode(flags_doc(string_flag(default=split(("a", 50_000), ("b", 50_000)))))
    )
    result = compiled.evaluate("f", {"key": value}, "dflt")
    assert (result.value, result.reason, result.error_code) == (
        "dflt",
        Reason.ERROR,
        ErrorCode.TARGETING_KEY_MISSING,
    )


# -- properties --------------------------------------------------------------------------

TEXT = st.text(max_size=40)


@settings(max_examples=200)
@given(salt=TEXT, value=TEXT)
def test_deterministic_in_range_and_equal_to_the_formula(salt: str, value: str) -> None:
    first = bucket(salt, value)
    assert first == bucket(salt, value)
    assert 0 <= first < SPACE
    assert first == reference_bucket(salt, value)


@settings(max_examples=200)
@given(salt=TEXT, value=TEXT, data=st.data())
def test_monotonic_in_the_first_weight(salt: str, value: str, data: st.DataObject) -> None:
    a = data.draw(st.integers(0, SPACE - 1), label="a")
    b = data.draw(st.integers(a + 1, SPACE), label="b")
    position = bucket(salt, value)
    if position < a:
        assert position < b


def _rollout(salt: str, weight: int) -> dict[str, object]:
    flag = string_flag("rollout", salt=salt, default=split(("a", weight), ("b", SPACE - weight)))
    return flags_doc(flag)


@settings(max_examples=100)
@given(salt=TEXT, key=st.text(min_size=1, max_size=40), data=st.data())
def test_engine_rollout_keeps_every_key_it_had(salt: str, key: str, data: st.DataObject) -> None:
    a = data.draw(st.integers(0, SPACE - 1), label="a")
    b = data.draw(st.integers(a + 1, SPACE), label="b")
    at_a = compile_snapshot(decode(_rollout(salt, a))).evaluate("rollout", {"key": key})
    at_b = compile_snapshot(decode(_rollout(salt, b))).evaluate("rollout", {"key": key})
    assert at_a.reason is Reason.SPLIT
    assert at_b.reason is Reason.SPLIT
    assert at_a.variation == ("a" if bucket(salt, key) < a else "b")
    if at_a.variation == "a":
        assert at_b.variation == "a"


@settings(max_examples=100)
@given(
    salt=TEXT,
    key=st.text(min_size=1, max_size=20),
    weights=st.lists(st.integers(0, SPACE // 5), min_size=1, max_size=5),
)
def test_engine_picks_the_range_holding_the_bucket(salt: str, key: str, weights: list[int]) -> None:
    parts = [(f"v{i}", w) for i, w in enumerate(weights)]
    parts.append(("rest", SPACE - sum(weights)))
    variations = [{"key": name, "value": name} for name, _ in parts]
    doc = flags_doc(string_flag(salt=salt, variations=variations, default=split(*parts)))
    result = compile_snapshot(decode(doc)).evaluate("f", {"key": key})
    position = bucket(salt, key)
    start = 0
    expected = None
    for name, weight in parts:
        if start <= position < start + weight:
            expected = name
            break
        start += weight
    assert result.variation == expected
    assert result.value == expected


# -- distribution ------------------------------------------------------------------------


@cache
def buckets_for(salt: str) -> tuple[int, ...]:
    return tuple(bucket(salt, f"user-{i}") for i in range(KEYS))


@pytest.mark.parametrize(
    "weight",
    [
        pytest.param(1_000, id="1%"),
        pytest.param(20_000, id="20%"),
        pytest.param(50_000, id="50%"),
        pytest.param(97_500, id="97.5%"),
    ],
)
def test_distribution_within_half_a_point(weight: int) -> None:
    share = sum(1 for b in buckets_for("distribution") if b < weight) / KEYS
    assert abs(share - weight / SPACE) <= 0.005


def test_engine_distribution_matches_the_bucket_function() -> None:
    weight = 20_000
    doc = flags_doc(
        string_flag("distribution", default=split(("a", weight), ("b", SPACE - weight)))
    )
    compiled = compile_snapshot(decode(doc))
    served = sum(
        1
        for i in range(KEYS)
        if compiled.evaluate("distribution", {"key": f"user-{i}"}).variation == "a"
    )
    expected = sum(1 for b in buckets_for("distribution") if b < weight)
    assert served == expected
    assert abs(served / KEYS - 0.2) <= 0.005


def _pearson(xs: tuple[int, ...], ys: tuple[int, ...]) -> float:
    n = len(xs)
    mx = sum(xs) / n
    my = sum(ys) / n
    cov = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    vx = sum((x - mx) ** 2 for x in xs)
    vy = sum((y - my) ** 2 for y in ys)
    return cov / math.sqrt(vx * vy)


@pytest.mark.parametrize(
    ("salt_a", "salt_b"),
    [
        pytest.param("distribution", "checkout-agent", id="unrelated-salts"),
        pytest.param("distribution", "distribution2", id="similar-salts"),
        pytest.param("flag-a", "flag-b", id="one-letter-apart"),
    ],
)
def test_salts_bucket_independently(salt_a: str, salt_b: str) -> None:
    first = buckets_for(salt_a)[:20_000]
    second = buckets_for(salt_b)[:20_000]
    equal = sum(1 for x, y in zip(first, second, strict=True) if x == y)
    # Independent uniform buckets agree with probability 1/100000: ~0.2 of 20000 keys.
    assert equal <= 5
    # |r| of 20000 independent pairs has a standard deviation of ~0.007.
    assert abs(_pearson(first, second)) < 0.04
    # Two 50 % rollouts on different salts share about a quarter of the keys.
    both = sum(1 for x, y in zip(first, second, strict=True) if x < 50_000 and y < 50_000)
    assert abs(both / len(first) - 0.25) <= 0.02
