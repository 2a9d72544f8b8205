"""Which proxy the SDK picks: proxy URLs, the environment's variables and ``NO_PROXY``."""

from __future__ import annotations

import pytest

from lockgate.sdk.proxy import Proxy, bypasses, choose_proxy, parse_proxy, proxy_from_environment

CORP = Proxy("proxy.corp", 3128)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param("http://proxy.corp:3128", CORP, id="full-url"),
        pytest.param("proxy.corp:3128", CORP, id="no-scheme-means-http"),
        pytest.param(" HTTP://proxy.corp:3128/ ", CORP, id="case-and-spaces"),
        pytest.param("http://proxy.corp", Proxy("proxy.corp", 80), id="default-port"),
        pytest.param("http://[::1]:8080", Proxy("::1", 8080), id="ipv6"),
        pytest.param(
            "http://ann:s%40cret@proxy.corp:3128",
            Proxy("proxy.corp", 3128, "Basic YW5uOnNAY3JldA=="),  # ann:s@cret
            id="credentials-unquoted",
        ),
        pytest.param(
            "http://ann@proxy.corp:3128",
            Proxy("proxy.corp", 3128, "Basic YW5uOg=="),  # ann:
            id="user-without-password",
        ),
    ],
)
def test_parse_proxy(url: str, expected: Proxy) -> None:
    assert parse_proxy(url, "HTTPS_PROXY") == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        pytest.param("socks5://proxy.corp:1080", "only http:// proxies", id="socks"),
        pytest.param("https://proxy.corp:443", "only http:// proxies", id="tls-to-proxy"),
        pytest.param("http://proxy.corp:port", "malformed port", id="bad-port"),
        pytest.param("http://:3128", "no host", id="no-host"),
    ],
)
def test_parse_proxy_errors_name_the_source(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        parse_proxy(url, "HTTPS_PROXY")
    assert str(caught.value).startswith("HTTPS_PROXY: ")


def test_proxy_headers_carry_credentials_only_when_given() -> None:
    assert CORP.headers() == {}
    assert parse_proxy("http://a:b@p:1", "x").headers() == {"Proxy-Authorization": "Basic YTpi"}


@pytest.mark.parametrize(
    ("environ", "scheme", "expected"),
    [
        pytest.param({}, "https", None, id="nothing-set"),
        pytest.param({"HTTPS_PROXY": "proxy.corp:3128"}, "https", CORP, id="https-upper"),
        pytest.param({"https_proxy": "proxy.corp:3128"}, "https", CORP, id="https-lower"),
        pytest.param(
            {"https_proxy": "proxy.corp:3128", "HTTPS_PROXY": "other:1"},
            "https",
            CORP,
            id="lowercase-wins",
        ),
        pytest.param(
            {"https_proxy": " ", "HTTPS_PROXY": "proxy.corp:3128"},
            "https",
            CORP,
            id="blank-lowercase-ignored",
        ),
        pytest.param({"HTTP_PROXY": "proxy.corp:3128"}, "https", None, id="http-var-not-for-https"),
        pytest.param({"HTTPS_PROXY": "proxy.corp:3128"}, "http", None, id="https-var-not-for-http"),
        pytest.param({"HTTP_PROXY": "proxy.corp:3128"}, "http", CORP, id="http-upper"),
        pytest.param({"ALL_PROXY": "proxy.corp:3128"}, "https", CORP, id="all-proxy-fallback"),
        pytest.param(
            {"ALL_PROXY": "other:1", "https_proxy": "proxy.corp:3128"},
            "https",
            CORP,
            id="specific-wins-over-all",
        ),
        pytest.param(
            {"HTTP_PROXY": "evil:1", "REQUEST_METHOD": "GET"}, "http", None, id="cgi-httpoxy"
        ),
        pytest.param(
            {"http_proxy": "proxy.corp:3128", "REQUEST_METHOD": "GET"},
            "http",
            CORP,
            id="cgi-lowercase-still-read",
        ),
        pytest.param(
            {"HTTPS_PROXY": "proxy.corp:3128", "NO_PROXY": "flags.example.com"},
            "https",
            None,
            id="no-proxy-upper",
        ),
        pytest.param(
            {"HTTPS_PROXY": "proxy.corp:3128", "no_proxy": "example.com"},
            "https",
            None,
            id="no-proxy-lower-parent-domain",
        ),
        pytest.param(
            {"HTTPS_PROXY": "proxy.corp:3128", "NO_PROXY": "other.example.com"},
            "https",
            CORP,
            id="no-proxy-other-host",
        ),
    ],
)
def test_proxy_from_environment(environ: dict[str, str], scheme: str, expected: Proxy) -> None:
    assert proxy_from_environment(scheme, "flags.example.com", 443, environ) == expected


def test_a_bypassed_host_ignores_a_malformed_proxy_variable() -> None:
    environ = {"HTTPS_PROXY": "socks5://x:1", "NO_PROXY": "*"}
    assert proxy_from_environment("https", "flags.example.com", 443, environ) is None


def test_a_malformed_variable_is_named() -> None:
    with pytest.raises(ValueError, match=r"^https_proxy: only http:// proxies"):
        proxy_from_environment("https", "h", 443, {"https_proxy": "socks5://x:1"})


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        pytest.param(None, Proxy("env.corp", 1), id="none-follows-the-environment"),
        pytest.param("", None, id="empty-goes-direct"),
        pytest.param("http://proxy.corp:3128", CORP, id="explicit-wins"),
    ],
)
def test_choose_proxy(option: str | None, expected: Proxy | None) -> None:
    environ = {"HTTPS_PROXY": "env.corp:1"}
    assert choose_proxy(option, "https", "h", 443, environ) == expected


def test_choose_proxy_names_the_option() -> None:
    with pytest.raises(ValueError, match=r"^proxy: only http:// proxies"):
        choose_proxy("socks5://x:1", "https", "h", 443, {})


@pytest.mark.parametrize(
    ("no_proxy", "host", "port", "expected"),
    [
        pytest.param("*", "anything.example", 443, True, id="star"),
        pytest.param("example.com", "example.com", 443, True, id="exact"),
        pytest.param("example.com", "api.example.com", 443, True, id="subdomain"),
        pytest.param(".example.com", "api.example.com", 443, True, id="leading-dot"),
        pytest.param(".example.com", "example.com", 443, True, id="leading-dot-itself"),
        pytest.param("*.example.com", "api.example.com", 443, True, id="leading-star-dot"),
        pytest.param("example.com", "badexample.com", 443, False, id="not-a-suffix-match"),
        pytest.param("EXAMPLE.com", "Api.Example.COM.", 443, True, id="case-and-trailing-dot"),
        pytest.param("a.test, example.com", "example.com", 443, True, id="comma-and-space"),
        pytest.param("a.test example.com", "example.com", 443, True, id="spaces-only"),
        pytest.param(",,", "example.com", 443, False, id="empty-entries"),
        pytest.param("example.com:8443", "example.com", 8443, True, id="port-matches"),
        pytest.param("example.com:8443", "example.com", 443, False, id="port-differs"),
        pytest.param("127.0.0.1", "127.0.0.1", 80, True, id="ipv4"),
        pytest.param("127.0.0.1", "127.0.0.2", 80, False, id="ipv4-other"),
        pytest.param("10.0.0.0/8", "10.20.30.40", 80, True, id="cidr"),
        pytest.param("10.0.0.0/8", "11.0.0.1", 80, False, id="cidr-outside"),
        pytest.param("127.0.0.1:9000", "127.0.0.1", 9000, True, id="ipv4-port"),
        pytest.param("::1", "::1", 80, True, id="ipv6"),
        pytest.param("[::1]:8080", "[::1]", 8080, True, id="ipv6-bracketed-port"),
        pytest.param("[::1]:8080", "::1", 80, False, id="ipv6-port-differs"),
        pytest.param("fd00::/8", "fd12::5", 80, True, id="ipv6-cidr"),
        pytest.param("localhost", "127.0.0.1", 80, False, id="names-never-match-addresses"),
        pytest.param("10.0.0.0/8", "ten.example", 80, False, id="cidr-never-matches-a-name"),
    ],
)
def test_bypasses(no_proxy: str, host: str, port: int, expected: bool) -> None:
    assert bypasses(no_proxy, host, port) is expected
