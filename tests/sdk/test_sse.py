"""The SSE parser against the WHATWG "interpreting an event stream" rules."""

from __future__ import annotations

import pytest

from lockgate.sdk.sse import SSEError, SSEEvent, SSEParser

Expected = list[tuple[str, str, str]]  # (event, data, id)


def parse(stream: bytes) -> Expected:
    parser = SSEParser()
    return [(e.event, e.data, e.id) for e in parser.feed(stream)]


@pytest.mark.parametrize(
    ("stream", "expected"),
    [
        pytest.param(b"data: hello\n\n", [("message", "hello", "")], id="default-type"),
        pytest.param(
            b"event: snapshot\nid: 7\ndata: {}\n\n", [("snapshot", "{}", "7")], id="typed"
        ),
        pytest.param(
            b"data: a\ndata: b\ndata:\ndata: c\n\n", [("message", "a\nb\n\nc", "")], id="multi-line"
        ),
        pytest.param(
            b"event: x\r\ndata: 1\r\n\r\nevent: y\rdata: 2\r\rdata: 3\n\n",
            [("x", "1", ""), ("y", "2", ""), ("message", "3", "")],
            id="crlf-cr-lf",
        ),
        pytest.param(b": ping\n\n: another\ndata: x\n\n", [("message", "x", "")], id="comments"),
        pytest.param(b"data:no-space\n\n", [("message", "no-space", "")], id="no-space"),
        pytest.param(b"data:  two\n\n", [("message", " two", "")], id="one-space-removed"),
        pytest.param(b"data\n\n", [("message", "", "")], id="field-without-colon"),
        pytest.param(b"data: a:b: c\n\n", [("message", "a:b: c", "")], id="colons-in-value"),
        pytest.param(
            b"id: 5\n\ndata: x\n\n", [("message", "x", "5")], id="id-without-data-persists"
        ),
        pytest.param(
            b"id: 1\ndata: a\n\ndata: b\n\nid\ndata: c\n\n",
            [("message", "a", "1"), ("message", "b", "1"), ("message", "c", "")],
            id="id-persists-and-resets",
        ),
        pytest.param(
            b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n",
            [("message", "a", "1"), ("message", "b", "1")],
            id="id-with-nul-ignored",
        ),
        pytest.param(b"event: lonely\n\ndata: x\n\n", [("message", "x", "")], id="type-reset"),
        pytest.param(b"\xef\xbb\xbfdata: bom\n\n", [("message", "bom", "")], id="bom"),
        pytest.param(
            b"\xef\xbb\xbf\xef\xbb\xbfdata: x\n\n", [], id="only-one-bom-is-ignored"
        ),  # the second BOM makes the field name "\ufeffdata", which is ignored
        pytest.param(b"foo: bar\ndata: x\n\n", [("message", "x", "")], id="unknown-field"),
        pytest.param(b"data: x\n", [], id="unterminated-event-not-dispatched"),
        pytest.param("data: é ✓\n\n".encode(), [("message", "é ✓", "")], id="utf-8"),
        pytest.param(b"data: \xff\n\n", [("message", "\ufffd", "")], id="invalid-utf-8"),
        pytest.param(b"\n\n\n", [], id="blank-lines"),
    ],
)
def test_parse(stream: bytes, expected: Expected) -> None:
    assert parse(stream) == expected


@pytest.mark.parametrize(
    ("stream", "retry"),
    [
        pytest.param(b"retry: 1000\n\n", 1000, id="digits"),
        pytest.param(b"retry: 1000\nretry: 25\n\n", 25, id="last-wins"),
        pytest.param(b"retry: 1.5\n\n", None, id="not-digits"),
        pytest.param(b"retry: -1\n\n", None, id="negative"),
        pytest.param(b"retry:\n\n", None, id="empty"),
        pytest.param("retry: ١٢\n\n".encode(), None, id="non-ascii-digits"),
    ],
)
def test_retry(stream: bytes, retry: int | None) -> None:
    parser = SSEParser()
    assert parser.feed(stream) == []
    assert parser.retry == retry


def test_every_split_of_a_stream_gives_the_same_events() -> None:
    stream = '\ufeffevent: change\r\nid: 9\r\ndata: {"é": 1}\r\n: ping\r\r\ndata: x\n\n'.encode()
    whole = parse(stream)
    assert whole == [("change", '{"é": 1}', "9"), ("message", "x", "9")]
    for cut in range(1, len(stream)):
        parser = SSEParser()
        events = parser.feed(stream[:cut]) + parser.feed(stream[cut:])
        assert [(e.event, e.data, e.id) for e in events] == whole, cut


def test_byte_by_byte() -> None:
    stream = b"data: a\r\n\r\ndata: b\r\r"
    parser = SSEParser()
    events = [e for i in range(len(stream)) for e in parser.feed(stream[i : i + 1])]
    assert events == [SSEEvent("message", "a", ""), SSEEvent("message", "b", "")]


def test_comments_are_counted() -> None:
    parser = SSEParser()
    parser.feed(b": ping\n\n: ping\n")
    assert parser.comments == 2


def test_last_event_id_is_kept_across_feeds() -> None:
    parser = SSEParser()
    parser.feed(b"id: 3\n\n")
    assert parser.last_event_id == "3"
    assert parser.feed(b"data: x\n\n") == [SSEEvent("message", "x", "3")]


def test_close_discards_an_incomplete_event() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: partial\n") == []
    parser.close()
    assert parser.feed(b"\n") == []


@pytest.mark.parametrize(
    "stream",
    [
        pytest.param(b"data: " + b"x" * 200 + b"\n\n", id="long-data"),
        pytest.param(b"data: " + b"x" * 200, id="long-unterminated-line"),
        pytest.param(
            b"data: " + b"x" * 60 + b"\n" * 1 + (b"data: " + b"x" * 60 + b"\n") * 3, id="many-lines"
        ),
    ],
)
def test_events_are_bounded(stream: bytes) -> None:
    parser = SSEParser(max_event_chars=100)
    with pytest.raises(SSEError, match="longer than 100"):
        parser.feed(stream)
