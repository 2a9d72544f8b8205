"""Authority modes: the standard variations of a mode behavior."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Mode"]


class Mode(StrEnum):
    """How much authority a generated behavior has, ordered from none to full.

    The control plane chooses the mode per request; the application enforces what the mode
    allows at its own service boundary.
    """

    OFF = "off"
    FALLBACK = "fallback"
    OBSERVE = "observe"
    DRAFT_ONLY = "draft_only"
    APPROVAL_REQUIRED = "approval_required"
    FULL = "full"

    @property
    def rank(self) -> int:
        """Position in the authority order (0 for ``off`` … 5 for ``full``)."""
        return _RANK[self]

    @property
    def is_active(self) -> bool:
        """The generated behavior runs at all (``observe`` and above)."""
        return self.rank >= _RANK[Mode.OBSERVE]

    @property
    def allows_drafts(self) -> bool:
        """The behavior may produce drafts for a person to act on."""
        return self.rank >= _RANK[Mode.DRAFT_ONLY]

    @property
    def allows_writes(self) -> bool:
        """The behavior may perform writes (after approval in ``approval_required``)."""
        return self.rank >= _RANK[Mode.APPROVAL_REQUIRED]

    @property
    def needs_approval(self) -> bool:
        """Each write needs a runtime approval before it happens."""
        return self is Mode.APPROVAL_REQUIRED

    @property
    def uses_fallback(self) -> bool:
        """The stable, non-generated path serves instead."""
        return self is Mode.FALLBACK

    def at_least(self, other: Mode) -> bool:
        """Whether this mode grants at least ``other``'s authority."""
        return self.rank >= other.rank

    def cap(self, ceiling: Mode) -> Mode:
        """This mode, lowered to ``ceiling`` if it grants more."""
        return self if self.rank <= ceiling.rank else ceiling

    @classmethod
    def parse(cls, value: object) -> Mode | None:
        """The mode named by ``value``, or ``None`` if it names none."""
        if isinstance(value, str):
            return _BY_VALUE.get(value)
        return None


_RANK: dict[Mode, int] = {mode: index for index, mode in enumerate(Mode)}
_BY_VALUE: dict[str, Mode] = {mode.value: mode for mode in Mode}
