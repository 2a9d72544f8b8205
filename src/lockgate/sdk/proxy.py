"""Which HTTP proxy the SDK goes through, read the way other Python and curl clients do.

``HTTPS_PROXY`` serves ``https://`` servers, ``HTTP_PROXY`` ``http://`` ones and
``ALL_PROXY`` both when the specific one is unset; ``NO_PROXY`` lists the hosts reached
directly. The lowercase form of each variable wins over the uppercase one. As in
``urllib``, uppercase ``HTTP_PROXY`` is ignored when ``REQUEST_METHOD`` is set: in a CGI
process it is a request header, under the control of whoever sent the request.

Only ``http://`` proxies are supported: plain requests are sent to them in absolute form,
TLS goes through a ``CONNECT`` tunnel (the proxy never sees inside it).
"""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

__all__ = ["Proxy", "bypasses", "choose_proxy", "parse_proxy", "proxy_from_environment"]


@dataclass(frozen=True, slots=True)
class Proxy:
    """An ``http://`` forward proxy."""

    host: str
    port: int
    authorization: str | None = None
    """The ``Proxy-Authorization`` value, when the proxy URL carries credentials."""

    def headers(self) -> dict[str, str]:
        """Headers the proxy itself reads (sent with ``CONNECT`` or absolute-form requests)."""
        return {} if self.authorization is None else {"Proxy-Authorization": self.authorization}


def parse_proxy(url: str, source: str) -> Proxy:
    """The proxy at ``url`` (``host:port`` alone means ``http://``); ``source`` names the
    option or variable it came from, for the error message."""
    text = url.strip()
    parts = urlsplit(text if "://" in text else f"http://{text}")
    if parts.scheme.lower() != "http":
        raise ValueError(f"{source}: only http:// proxies are supported, not {url!r}")
    try:
        port = parts.port or 80
    except ValueError:
        raise ValueError(f"{source}: malformed port in proxy URL {url!r}") from None
    if not parts.hostname:
        raise ValueError(f"{source}: no host in proxy URL {url!r}")
    authorization = None
    if parts.username is not None:
        user = unquote(parts.username)
        password = unquote(parts.password or "")
        token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        authorization = f"Basic {token}"
    return Proxy(parts.hostname, port, authorization)


def choose_proxy(
    option: str | None, scheme: str, host: str, port: int, environ: Mapping[str, str]
) -> Proxy | None:
    """The proxy for ``scheme://host:port``: ``option`` when given (``""``: none), else the
    environment's."""
    if option is None:
        return proxy_from_environment(scheme, host, port, environ)
    return parse_proxy(option, "proxy") if option else None


def proxy_from_environment(
    scheme: str, host: str, port: int, environ: Mapping[str, str]
) -> Proxy | None:
    """The proxy the environment names for ``scheme://host:port``, if any."""
    found = _variable(environ, f"{scheme}_proxy") or _variable(environ, "all_proxy")
    if found is None:
        return None
    name, url = found
    no_proxy = _variable(environ, "no_proxy")
    if no_proxy is not None and bypasses(no_proxy[1], host, port):
        return None
    return parse_proxy(url, name)


def _variable(environ: Mapping[str, str], lower: str) -> tuple[str, str] | None:
    """``(name, value)`` of the first non-empty of ``lower`` and its uppercase form."""
    names = [lower, lower.upper()]
    if lower == "http_proxy" and "REQUEST_METHOD" in environ:
        names = [lower]  # CGI: HTTP_PROXY would be the request's "Proxy:" header
    for name in names:
        value = environ.get(name, "").strip()
        if value:
            return name, value
    return None


def bypasses(no_proxy: str, host: str, port: int) -> bool:
    """Whether a ``NO_PROXY`` list sends ``host:port`` direct.

    Entries are separated by commas or spaces: ``*`` (every host), a domain (``corp.example``
    or ``.corp.example``: it and its subdomains), an IP address or a CIDR block
    (``10.0.0.0/8``, ``::1``), each optionally with ``:port``.
    """
    host = host.lower().strip("[]").rstrip(".")
    address = _address(host)
    for entry in no_proxy.replace(",", " ").lower().split():
        if entry == "*":
            return True
        name, entry_port = _split_port(entry)
        if entry_port is not None and entry_port != port:
            continue
        if _matches(name, host, address):
            return True
    return False


def _matches(
    entry: str, host: str, address: ipaddress.IPv4Address | ipaddress.IPv6Address | None
) -> bool:
    if address is not None:
        try:
            return address in ipaddress.ip_network(entry, strict=False)
        except ValueError:
            return False  # a domain entry never matches an IP address
    domain = entry.removeprefix("*").strip(".")
    return bool(domain) and (host == domain or host.endswith(f".{domain}"))


def _split_port(entry: str) -> tuple[str, int | None]:
    if entry.startswith("["):  # [v6]:port or [v6]
        address, _, rest = entry[1:].partition("]")
        port = rest.removeprefix(":")
        return address, int(port) if port.isdigit() else None
    name, colon, port = entry.rpartition(":")
    if colon and port.isdigit() and ":" not in name:  # not a bare IPv6 address
        return name, int(port)
    return entry, None


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None
