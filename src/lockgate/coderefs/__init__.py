"""Where behavior keys are used in a source tree: ``lockgate code-refs scan``.

One pass per file finds every key at once (an Aho-Corasick automaton of all keys, their
aliases and the SDK calls, :mod:`.matcher`); the walk honours ``.gitignore`` files
(:mod:`.walk`); :func:`.scan.scan` runs it over a tree, in several processes.

Needs the ``cli`` extra (``ahocorasick-rs``, ``pathspec``); nothing here talks to a server.
"""

from __future__ import annotations

from lockgate.coderefs.aliases import ALIAS_STYLES, aliases_of
from lockgate.coderefs.matcher import (
    DEFAULT_DELIMITERS,
    SDK_CALLS,
    Hit,
    Matcher,
    MatcherOptions,
)
from lockgate.coderefs.scan import Reference, ScanResult, scan
from lockgate.coderefs.walk import LANGUAGES, language_of, walk

__all__ = [
    "ALIAS_STYLES",
    "DEFAULT_DELIMITERS",
    "LANGUAGES",
    "SDK_CALLS",
    "Hit",
    "Matcher",
    "MatcherOptions",
    "Reference",
    "ScanResult",
    "aliases_of",
    "language_of",
    "scan",
    "walk",
]
