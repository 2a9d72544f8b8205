"""The SDK behind a real forward proxy on 127.0.0.1: it stays current through the proxy.

Plain HTTP goes to the proxy in absolute form; HTTPS goes through a ``CONNECT`` tunnel to a
TLS server whose self-signed CA the client is told about the ways users tell other Python
clients (the ``ca_bundle`` option, ``REQUESTS_CA_BUNDLE``, ``SSL_CERT_FILE``).
"""

from __future__ import annotations

import base64
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lockgate.sdk import BackoffPolicy, Client, SyncState, SyncTuning
from lockgate.sdk.proxy import Proxy
from lockgate.sdk.transport import HttpTransport, ProxyRefusedError, TransportError
from tests.engine.factories import JSON, flags_doc, string_flag
from tests.sdk.delivery_server import KEY, DeliveryServer, eventually, running
from tests.sdk.forward_proxy import ForwardProxy, proxying
from tests.sdk.tls import Certificate

STREAM = "/sdk/v1/stream"
SNAPSHOT = "/sdk/v1/snapshot"
EVENTS = "/sdk/v1/events"
CTX = {"key": "u1"}
FAST = SyncTuning(backoff=BackoffPolicy(initial=0.02, cap=0.2), stream_retry_interval=0.3)
PROXY_VARIABLES = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "REQUESTS_CA_BUNDLE",
    "SSL_CERT_FILE",
)


def serving(value: str, version: int) -> JSON:
    return flags_doc(
        string_flag("f", version=version, default={"variation": value}), version=version
    )


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only what a test sets: no proxy or CA bundle inherited from the machine."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return Certificate(tmp_path_factory.mktemp("proxy-tls"))


@pytest.fixture
def proxy() -> Iterator[ForwardProxy]:
    with proxying() as forward:
        yield forward


@pytest.fixture
def plain_server() -> Iterator[DeliveryServer]:
    with running() as delivery:
        delivery.publish(serving("a", 1))
        yield delivery


@pytest.fixture
def tls_server(certificate: Certificate) -> Iterator[DeliveryServer]:
    with running(DeliveryServer(tls=certificate.server_context())) as delivery:
        delivery.publish(serving("a", 1))
        yield delivery


def client_for(url: str, **options: Any) -> Client:
    settings: dict[str, Any] = {
        "tuning": FAST,
        "events_interval": 3600.0,
        "connect_timeout": 2.0,
        "read_timeout": 5.0,
        **options,
    }
    return Client(KEY, url, **settings)


def stays_current(client: Client, server: DeliveryServer) -> None:
    """Ready on the first snapshot, then a change published later reaches the client."""
    assert client.wait_until_ready(10)
    assert client.variation("f", CTX) == "a"
    server.wait_streams()
    server.publish(serving("b", 2))
    eventually(lambda: client.snapshot.version == 2)
    assert client.variation("f", CTX) == "b"
    client.variation("f", CTX)  # a count to report
    assert client.flush_counts(timeout=5.0)


def test_plain_http_client_behind_a_proxy_stays_current(
    monkeypatch: pytest.MonkeyPatch, proxy: ForwardProxy, plain_server: DeliveryServer
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    with client_for(plain_server.url) as client:
        stays_current(client, plain_server)
    origin = f"http://127.0.0.1:{plain_server.port}"
    assert proxy.methods() == [f"GET {origin}{STREAM}", f"POST {origin}{EVENTS}"]
    assert len(plain_server.seen(STREAM)) == 1  # the change came over the proxied stream
    assert plain_server.seen(STREAM)[0].header("host") == f"127.0.0.1:{plain_server.port}"
    assert len(plain_server.events) == 1
    assert not proxy.errors


@pytest.mark.parametrize("how", ["ca_bundle", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"])
def test_tls_client_through_a_connect_tunnel_stays_current(
    monkeypatch: pytest.MonkeyPatch,
    proxy: ForwardProxy,
    tls_server: DeliveryServer,
    certificate: Certificate,
    how: str,
) -> None:
    monkeypatch.setenv("https_proxy", proxy.url)
    options: dict[str, Any] = {}
    if how == "ca_bundle":
        options["ca_bundle"] = certificate.cert_file
    else:
        monkeypatch.setenv(how, str(certificate.cert_file))
    with client_for(tls_server.url, **options) as client:
        stays_current(client, tls_server)
    tunnel = f"CONNECT 127.0.0.1:{tls_server.port}"
    assert proxy.methods() == [tunnel, tunnel]  # the stream, then the counts
    assert len(tls_server.seen(STREAM)) == 1
    assert len(tls_server.events) == 1
    assert not proxy.errors


def test_polling_through_a_connect_tunnel(
    monkeypatch: pytest.MonkeyPatch,
    proxy: ForwardProxy,
    tls_server: DeliveryServer,
    certificate: Certificate,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    client = client_for(
        tls_server.url, stream=False, poll_interval=0.05, ca_bundle=str(certificate.cert_file)
    )
    with client:
        assert client.wait_until_ready(10)
        tls_server.publish(serving("b", 2))
        eventually(lambda: client.snapshot.version == 2)
        assert client.state is SyncState.READY
    assert len(tls_server.seen(SNAPSHOT)) >= 2
    assert set(proxy.methods()) == {f"CONNECT 127.0.0.1:{tls_server.port}"}
    assert not proxy.errors


@pytest.mark.parametrize("no_proxy", ["127.0.0.1", "127.0.0.0/8", "*", "example.com,127.0.0.1"])
def test_no_proxy_goes_direct(
    monkeypatch: pytest.MonkeyPatch,
    proxy: ForwardProxy,
    plain_server: DeliveryServer,
    no_proxy: str,
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", no_proxy)
    with client_for(plain_server.url) as client:
        stays_current(client, plain_server)
    assert proxy.methods() == []
    assert len(plain_server.seen(STREAM)) == 1


def test_the_proxy_option_wins_over_the_environment(
    monkeypatch: pytest.MonkeyPatch, proxy: ForwardProxy, plain_server: DeliveryServer
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    with client_for(plain_server.url, proxy=proxy.url) as client:
        stays_current(client, plain_server)
    assert len(proxy.methods()) == 2
    with client_for(plain_server.url, proxy="") as direct:
        assert direct.wait_until_ready(10)
    assert len(proxy.methods()) == 2  # "" went direct


def test_proxy_credentials_are_sent_to_the_proxy_only(
    monkeypatch: pytest.MonkeyPatch,
    tls_server: DeliveryServer,
    plain_server: DeliveryServer,
    certificate: Certificate,
) -> None:
    expected = "Basic " + base64.b64encode(b"ann:s@cret").decode()
    with proxying(require_authorization=expected) as proxy:
        url = f"http://ann:s%40cret@127.0.0.1:{proxy.port}"
        monkeypatch.setenv("HTTP_PROXY", url)
        monkeypatch.setenv("HTTPS_PROXY", url)
        with client_for(tls_server.url, ca_bundle=certificate.cert_file) as client:
            stays_current(client, tls_server)
        with client_for(plain_server.url) as client:
            stays_current(client, plain_server)
    assert {asked.authorization for asked in proxy.asked} == {expected}
    assert len(proxy.asked) == 4
    seen = tls_server.requests + plain_server.requests
    assert all(request.header("proxy-authorization") is None for request in seen)


def transport_via(url: str, proxy_url: str, certificate: Certificate) -> HttpTransport:
    return HttpTransport(
        url,
        KEY,
        connect_timeout=2.0,
        read_timeout=2.0,
        user_agent="lockgate-test/1.0",
        ca_bundle=str(certificate.cert_file),
        proxy=proxy_url,
    )


@pytest.mark.parametrize("status", [407, 403, 502])
def test_a_refused_tunnel_is_a_transport_error(
    tls_server: DeliveryServer, certificate: Certificate, status: int
) -> None:
    with proxying(refuse_connect=status) as proxy:
        transport = transport_via(tls_server.url, proxy.url, certificate)
        assert transport.proxy == Proxy("127.0.0.1", proxy.port)
        with pytest.raises(ProxyRefusedError) as refused, transport.stream(STREAM, {}):
            pytest.fail("the stream was opened")
        assert refused.value.status == status
        with pytest.raises(TransportError, match=str(status)):
            transport.request("GET", SNAPSHOT)
    assert tls_server.requests == []


def test_a_client_behind_a_refusing_proxy_says_so(
    monkeypatch: pytest.MonkeyPatch,
    tls_server: DeliveryServer,
    certificate: Certificate,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with proxying(refuse_connect=407) as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        with client_for(tls_server.url, ca_bundle=certificate.cert_file) as client:
            eventually(lambda: len(proxy.asked) >= 2)  # retried, with backoff
            eventually(lambda: client.state is SyncState.ERROR)
            assert not client.ready
    assert tls_server.requests == []
    assert "the proxy refused the tunnel: HTTP 407" in caplog.text


def test_the_tunnel_does_not_weaken_certificate_checks(
    tls_server: DeliveryServer, proxy: ForwardProxy, tmp_path: Path
) -> None:
    stranger = Certificate(tmp_path)  # a CA that did not sign the server's certificate
    transport = transport_via(tls_server.url, proxy.url, stranger)
    with pytest.raises(ssl.SSLCertVerificationError), transport.stream(STREAM, {}):
        pytest.fail("the stream was opened")
    assert proxy.methods() == [f"CONNECT 127.0.0.1:{tls_server.port}"]
