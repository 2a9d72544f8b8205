"""Scan a tree for references to behavior keys: the walk, the matcher, several processes.

Files are read and matched as bytes (UTF-8; only the lines of references are decoded, bad
bytes replaced); files with a NUL byte in
their first 8 KiB (binary) or larger than ``max_file_bytes`` are skipped. With ``jobs`` > 1
the files are split in batches over that many processes, each with its own automaton.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lockgate.coderefs.matcher import Matcher, MatcherOptions
from lockgate.coderefs.walk import walk

__all__ = ["DEFAULT_MAX_FILE_BYTES", "Reference", "ScanResult", "scan"]

DEFAULT_MAX_FILE_BYTES = 4 * 1024 * 1024
_BATCH = 400


@dataclass(frozen=True, slots=True)
class Reference:
    key: str
    path: str
    line: int
    column: int
    text: str
    how: str
    known: bool

    def document(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ScanResult:
    root: str
    files_scanned: int
    bytes_scanned: int
    skipped: int
    references: list[Reference]
    seconds: float

    def keys(self) -> set[str]:
        return {r.key for r in self.references}


_matcher: Matcher | None = None
_limit = DEFAULT_MAX_FILE_BYTES


def _start(keys: Sequence[str], options: MatcherOptions, limit: int) -> None:
    global _matcher, _limit  # noqa: PLW0603 - one automaton per worker process
    _matcher = Matcher(keys, options)
    _limit = limit


def _scan_batch(batch: Sequence[tuple[str, str, str]]) -> tuple[int, int, int, list[Reference]]:
    assert _matcher is not None
    files = size = skipped = 0
    found: list[Reference] = []
    for path, relative, language in batch:
        try:
            with open(path, "rb") as f:
                data = f.read(_limit + 1)
        except OSError:
            skipped += 1
            continue
        if len(data) > _limit or b"\0" in data[:8192]:
            skipped += 1
            continue
        files += 1
        size += len(data)
        for hit in _matcher.find(data, language):
            found.append(
                Reference(hit.key, relative, hit.line, hit.column, hit.text, hit.how, hit.known)
            )
    return files, size, skipped, found


def _batches(files: Iterable[tuple[str, str, str]]) -> Iterable[list[tuple[str, str, str]]]:
    batch: list[tuple[str, str, str]] = []
    for item in files:
        batch.append(item)
        if len(batch) == _BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def scan(
    root: str | Path,
    keys: Iterable[str],
    options: MatcherOptions | None = None,
    *,
    jobs: int = 1,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
) -> ScanResult:
    """Every reference to ``keys`` under ``root`` (sorted by path and line)."""
    started = time.perf_counter()
    wanted = sorted(set(keys))
    opts = options or MatcherOptions()
    results: Iterable[tuple[int, int, int, list[Reference]]]
    if jobs <= 1:
        _start(wanted, opts, max_file_bytes)
        results = map(_scan_batch, _batches(walk(root)))
        totals = _total(results)
    else:
        with ProcessPoolExecutor(
            max_workers=jobs, initializer=_start, initargs=(wanted, opts, max_file_bytes)
        ) as pool:
            totals = _total(pool.map(_scan_batch, _batches(walk(root))))
    files, size, skipped, found = totals
    found.sort(key=lambda r: (r.path, r.line, r.key))
    return ScanResult(os.fspath(root), files, size, skipped, found, time.perf_counter() - started)


def _total(
    results: Iterable[tuple[int, int, int, list[Reference]]],
) -> tuple[int, int, int, list[Reference]]:
    files = size = skipped = 0
    found: list[Reference] = []
    for f, s, k, refs in results:
        files += f
        size += s
        skipped += k
        found.extend(refs)
    return files, size, skipped, found
