#!/usr/bin/env python3
"""Compute lockgate split buckets, independently of the engine (stdlib only).

Implements the formula in docs/snapshot-format.md ("Bucketing"):

    h      = SHA-256( UTF-8( salt + "/" + value ) )
    bucket = (first 8 bytes of h as unsigned big-endian integer * 100000) >> 64   # 0..99999

A string value is used as it is; an integer in decimal. Any other type counts as
missing (the engine then reports TARGETING_KEY_MISSING).

Usage:
    buckets.py SALT VALUE [VALUE ...]
        print "<bucket>\t<value>" for each value (values are strings; prefix one with
        "int:" to bucket it as an integer, e.g. int:42)
    buckets.py --search SALT LO HI [--prefix user-] [--limit 5] [--max 1000000]
        print keys "<prefix><n>" whose bucket lies in [LO, HI)
"""

from __future__ import annotations

import argparse
import hashlib
import sys

BUCKETS = 100_000


def bucket_input(value: object) -> str | None:
    """The string hashed for an attribute value, or None when it counts as missing."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    return None


def bucket_of(hash_input: str) -> int:
    """Bucket of the full hash input, i.e. salt + "/" + value."""
    digest = hashlib.sha256(hash_input.encode("utf-8")).digest()
    return (int.from_bytes(digest[:8], "big") * BUCKETS) >> 64


def bucket(salt: str, value: object) -> int | None:
    text = bucket_input(value)
    if text is None:
        return None
    return bucket_of(f"{salt}/{text}")


def pick(split: list[tuple[str, int]], b: int) -> str:
    """Variation whose consecutive range [start, start + weight) holds bucket b."""
    start = 0
    for variation, weight in split:
        if start <= b < start + weight:
            return variation
        start += weight
    raise ValueError(f"bucket {b} outside split {split}")


def _parse_value(raw: str) -> object:
    return int(raw[4:]) if raw.startswith("int:") else raw


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--search":
        parser = argparse.ArgumentParser(prog="buckets.py --search")
        parser.add_argument("salt")
        parser.add_argument("lo", type=int)
        parser.add_argument("hi", type=int)
        parser.add_argument("--prefix", default="user-")
        parser.add_argument("--limit", type=int, default=5)
        parser.add_argument("--max", type=int, default=1_000_000)
        args = parser.parse_args(argv[1:])
        found = 0
        for n in range(args.max):
            key = f"{args.prefix}{n}"
            b = bucket(args.salt, key)
            assert b is not None
            if args.lo <= b < args.hi:
                print(f"{b}\t{key}")
                found += 1
                if found >= args.limit:
                    break
        return 0 if found else 1
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    salt, *values = argv
    for raw in values:
        print(f"{bucket(salt, _parse_value(raw))}\t{raw}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
