"""The scanner on a fixture tree: true positives, and the false ones it must not report —
comments, longer keys containing a key, other strings, ignored and binary files."""

from __future__ import annotations

from pathlib import Path

import pytest

from lockgate.coderefs import Matcher, MatcherOptions, aliases_of, scan
from tests.coderefs.tree import EXPECTED, write_tree

KEYS = ["checkout", "renewal-banner", "checkout-v2"]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return write_tree(tmp_path / "repo")


@pytest.mark.parametrize("jobs", [1, 2])
def test_finds_exactly_the_references(tree: Path, jobs: int) -> None:
    result = scan(tree, KEYS, jobs=jobs)
    assert [(r.path, r.line, r.key) for r in result.references] == EXPECTED
    unknown = [(r.key, r.how) for r in result.references if not r.known]
    assert unknown == [("ghost-flag", "sdk_call")]
    assert result.skipped == 1  # the binary file
    assert result.files_scanned == 8


def test_a_key_unknown_to_the_list_is_still_found_by_its_sdk_call(tree: Path) -> None:
    result = scan(tree, ["renewal-banner"])
    found = {(r.path, r.line, r.key, r.known) for r in result.references}
    assert ("app/checkout.py", 4, "checkout", False) in found
    assert ("svc/main.go", 4, "checkout", False) in found
    assert ("deploy/flags.json", 1, "checkout", False) not in found  # a literal, not a call


def test_aliases_match_whole_identifiers(tree: Path) -> None:
    plain = scan(tree, KEYS)
    aliased = scan(tree, KEYS, MatcherOptions(alias_styles=("upper",)))
    extra = {(r.path, r.line, r.how) for r in aliased.references} - {
        (r.path, r.line, r.how) for r in plain.references
    }
    assert extra == {("svc/Flags.java", 3, "alias")}


def test_custom_delimiters() -> None:
    matcher = Matcher(["checkout"], MatcherOptions(delimiters="<", sdk_calls=()))
    assert [h.line for h in matcher.find(b'a = "checkout"\nb = <checkout<\n', "python")] == [2]


def test_the_line_text_is_the_context() -> None:
    (hit,) = Matcher(["checkout"]).find('\n\n  é = "checkout"  \n'.encode(), "python")
    assert (hit.line, hit.column, hit.text, hit.how) == (3, 7, 'é = "checkout"', "literal")


@pytest.mark.parametrize(
    ("key", "styles", "expected"),
    [
        ("new-checkout", ("camel", "pascal", "snake", "upper", "kebab"),
         ["newCheckout", "NewCheckout", "new_checkout", "NEW_CHECKOUT"]),
        ("newCheckout", ("kebab", "snake"), ["new-checkout", "new_checkout"]),
        ("checkout", ("camel", "upper"), ["CHECKOUT"]),
    ],
)  # fmt: skip
def test_case_variants(key: str, styles: tuple[str, ...], expected: list[str]) -> None:
    assert aliases_of(key, styles) == expected
