"""An incremental parser for ``text/event-stream`` (Server-Sent Events).

Follows the WHATWG HTML specification's "interpreting an event stream": UTF-8 with one
leading byte order mark ignored; lines end in CRLF, LF or CR (also when a CRLF pair is
split between two reads); ``:`` starts a comment; a field without ``:`` has an empty
value; one space after the colon is dropped; ``data`` lines are joined with LF; an empty
line dispatches the event unless no data was given; ``id`` persists across events and is
ignored when it contains NUL; ``retry`` is accepted only when it is all ASCII digits.

Only standard library code: the SDK has no runtime dependencies.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

__all__ = ["DEFAULT_MAX_EVENT_CHARS", "SSEError", "SSEEvent", "SSEParser"]

DEFAULT_MAX_EVENT_CHARS = 64 * 1024 * 1024
"""Longest event (or unterminated line) accepted before the stream is refused."""

_LINE_END = re.compile(r"\r\n|\r|\n")
_BOM = "\ufeff"


class SSEError(Exception):
    """The stream cannot be parsed any further (an event exceeds the size bound)."""


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One dispatched event: its type (``message`` by default), data and last event id."""

    event: str
    data: str
    id: str


class SSEParser:
    """Feed it bytes as they arrive; it returns the events completed by each chunk."""

    def __init__(self, max_event_chars: int = DEFAULT_MAX_EVENT_CHARS) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._max = max_event_chars
        self._pending = ""
        self._started = False
        self._after_cr = False
        self._event = ""
        self._data: list[str] = []
        self._data_chars = 0
        self.last_event_id = ""
        """The last event id buffer: persists across events, as in the specification."""
        self.retry: int | None = None
        """The last valid ``retry`` field (milliseconds), or ``None``."""
        self.comments = 0
        """How many comment lines were seen (``: ping`` heartbeats among them)."""

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Parse ``chunk``; return the events it completed, in order."""
        return self._feed_text(self._decoder.decode(chunk))

    def close(self) -> None:
        """End of stream: an incomplete event is discarded, as the specification says."""
        self._decoder.reset()
        self._pending = ""
        self._after_cr = False
        self._reset_event()

    def _feed_text(self, text: str) -> list[SSEEvent]:
        if not self._started and text:
            self._started = True
            text = text.removeprefix(_BOM)
        if self._after_cr and text:
            self._after_cr = False
            text = text.removeprefix("\n")  # the LF of a CRLF split between two chunks
        buffer = self._pending + text if self._pending else text
        # Servers end lines with LF; CR and CRLF take the (slower) general split.
        lines = _LINE_END.split(buffer) if "\r" in buffer else buffer.split("\n")
        self._pending = lines.pop()
        if buffer.endswith("\r"):
            self._after_cr = True
        if len(self._pending) + self._data_chars > self._max:
            raise SSEError(f"event longer than {self._max} characters")
        events: list[SSEEvent] = []
        for line in lines:
            event = self._line(line)
            if event is not None:
                events.append(event)
        return events

    def _line(self, line: str) -> SSEEvent | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            self.comments += 1
            return None
        field, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        self._field(field, value)
        return None

    def _field(self, field: str, value: str) -> None:
        if field == "event":
            self._event = value
        elif field == "data":
            self._data.append(value)
            self._data_chars += len(value) + 1
            if self._data_chars > self._max:
                raise SSEError(f"event longer than {self._max} characters")
        elif field == "id":
            if "\0" not in value:
                self.last_event_id = value
        elif field == "retry" and value.isascii() and value.isdigit():
            self.retry = int(value)
        # Any other field is ignored.

    def _dispatch(self) -> SSEEvent | None:
        if not self._data:
            self._reset_event()
            return None
        event = SSEEvent(self._event or "message", "\n".join(self._data), self.last_event_id)
        self._reset_event()
        return event

    def _reset_event(self) -> None:
        self._event = ""
        self._data = []
        self._data_chars = 0
