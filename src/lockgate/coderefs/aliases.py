"""Case variants of a behavior key, for code that names it as an identifier.

``new-checkout`` is ``newCheckout`` (camel), ``NewCheckout`` (pascal), ``new_checkout``
(snake), ``NEW_CHECKOUT`` (upper) and ``new-checkout`` (kebab). Words are split on ``-``,
``_``, ``.``, ``:`` and on lower-to-upper case changes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["ALIAS_STYLES", "aliases_of", "words_of"]

ALIAS_STYLES = ("camel", "pascal", "snake", "upper", "kebab")
_SPLIT = re.compile(r"[-_.:]+|(?<=[a-z0-9])(?=[A-Z])")


def words_of(key: str) -> list[str]:
    return [w.lower() for w in _SPLIT.split(key) if w]


def _styled(words: list[str], style: str) -> str:
    if style == "camel":
        return words[0] + "".join(w.capitalize() for w in words[1:])
    if style == "pascal":
        return "".join(w.capitalize() for w in words)
    if style == "snake":
        return "_".join(words)
    if style == "upper":
        return "_".join(words).upper()
    return "-".join(words)


def aliases_of(key: str, styles: Iterable[str]) -> list[str]:
    """The key's variants in ``styles`` (the key itself left out), in style order."""
    words = words_of(key)
    if not words:
        return []
    found: list[str] = []
    for style in styles:
        if style not in ALIAS_STYLES:
            raise ValueError(f"unknown alias style {style!r}; one of {', '.join(ALIAS_STYLES)}")
        alias = _styled(words, style)
        if alias != key and alias not in found:
            found.append(alias)
    return found
