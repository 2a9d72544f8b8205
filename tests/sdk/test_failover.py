"""Several server URLs: the SDK uses the first that answers and fails over at once."""

from __future__ import annotations

import pytest

from lockgate.sdk import Client, SyncTuning
from lockgate.sdk.backoff import BackoffPolicy
from lockgate.sdk.failover import FailoverTransport, base_urls
from lockgate.sdk.transport import HttpError, HttpTransport
from tests.delivery.servers import free_port
from tests.engine.factories import snapshot_doc
from tests.sdk.delivery_server import KEY, DeliveryServer, eventually, running

SNAPSHOT = "/sdk/v1/snapshot"
DOC = snapshot_doc(version=3)


def _transport(*urls: str) -> FailoverTransport:
    return FailoverTransport(
        [
            HttpTransport(url, KEY, connect_timeout=2, read_timeout=2, user_agent="t", proxy="")
            for url in urls
        ]
    )


def _nothing_listening() -> str:
    return f"http://127.0.0.1:{free_port()}"


def test_base_url_is_one_url_or_a_non_empty_list() -> None:
    assert base_urls("http://a") == ["http://a"]
    assert base_urls(["http://a", "http://b"]) == ["http://a", "http://b"]
    with pytest.raises(ValueError, match="non-empty"):
        base_urls([])


def test_a_refused_connection_moves_on_to_the_next_server_and_stays_there() -> None:
    with running() as server:
        server.publish(DOC)
        transport = _transport(_nothing_listening(), server.url)
        assert transport.request("GET", SNAPSHOT).status == 200
        assert (transport.current, transport.failovers) == (1, 1)
        assert transport.request("GET", SNAPSHOT).status == 200
        assert transport.failovers == 1  # it stays on the server that answered


def test_a_503_moves_on_even_for_a_post_but_other_errors_do_not() -> None:
    with running() as stopping, running() as other:
        stopping.status["/sdk/v1/events"] = (503, {"Retry-After": "1"})
        transport = _transport(stopping.url, other.url)
        body: dict[str, list[int]] = {"counts": []}
        response = transport.request("POST", "/sdk/v1/events", json_body=body, expect=(202,))
        assert response.status == 202
        assert transport.current == 1
        other.status[SNAPSHOT] = (500, {})
        stopping.status[SNAPSHOT] = (200, {})
        with pytest.raises(HttpError) as refused:
            transport.request("GET", SNAPSHOT)
        assert refused.value.status == 500  # lockgate's own answer: not retried elsewhere


def test_when_every_server_fails_the_last_failure_is_raised() -> None:
    transport = _transport(_nothing_listening(), _nothing_listening())
    with pytest.raises(ConnectionRefusedError):
        transport.request("GET", SNAPSHOT)


def test_a_client_streams_from_the_next_server_when_its_server_goes_away() -> None:
    first, second = DeliveryServer(), DeliveryServer()
    tuning = SyncTuning(backoff=BackoffPolicy(initial=0.05, cap=0.2))
    with running(first), running(second):
        first.publish(DOC)
        second.publish(snapshot_doc(version=4))
        with Client(KEY, [first.url, second.url], events=False, tuning=tuning) as client:
            assert client.wait_until_ready(5)
            first.wait_streams(1)
            first.stop()  # its stream drops and its port refuses connections
            second.wait_streams(1)
            eventually(lambda: client.snapshot.version == 4)
