"""Which webhook targets lockgate refuses to call (server-side request forgery).

A target is refused unless every address its host resolves to is a public unicast
address: loopback, private (RFC 1918, unique local), link-local (cloud metadata services
live at 169.254.169.254 and fd00:ec2::254), shared (100.64.0.0/10), unspecified,
multicast, reserved and documentation ranges are refused, in IPv4 and IPv6, including IPv4
addresses wrapped in IPv6 (``::ffff:127.0.0.1``, 6to4, Teredo).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

__all__ = ["Target", "TargetProblem", "forbidden_address", "parse_target"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class TargetProblem(ValueError):  # noqa: N818 - named for what it reports
    """Why a target URL is refused (the message names it)."""


@dataclass(frozen=True)
class Target:
    url: str
    scheme: str
    host: str
    port: int
    path: str  # path and query, at least "/"

    @property
    def literal(self) -> IPAddress | None:
        """The host as an address, when the URL names one."""
        try:
            return ipaddress.ip_address(self.host)
        except ValueError:
            return None

    def url_for(self, address: str) -> str:
        """The same URL with the host replaced by ``address`` (what is connected to)."""
        shown = f"[{address}]" if ":" in address else address
        return f"{self.scheme}://{shown}:{self.port}{self.path}"


def parse_target(url: str) -> Target:
    """Check the URL's form: ``http`` or ``https``, a host, no credentials, no fragment."""
    try:
        parts: SplitResult = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise TargetProblem(f"not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise TargetProblem("must be an http:// or https:// URL")
    if not parts.hostname:
        raise TargetProblem("must name a host")
    if parts.username is not None or parts.password is not None:
        raise TargetProblem("must not carry credentials; authenticate with the signature")
    if parts.fragment:
        raise TargetProblem("must not have a fragment")
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    default = 443 if parts.scheme == "https" else 80
    return Target(url, parts.scheme, parts.hostname, port or default, path)


def _unwrapped(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv6Address):
        inner = address.ipv4_mapped or address.sixtofour
        if inner is not None:
            return inner
        if address.teredo is not None:
            return address.teredo[1]
    return address


def forbidden_address(address: IPAddress) -> str | None:
    """Why ``address`` may not be a webhook target, or ``None`` for a public address."""
    inner = _unwrapped(address)
    for candidate in {address, inner}:
        if candidate.is_multicast:
            return f"{address} is a multicast address"
        if candidate.is_unspecified:
            return f"{address} is the unspecified address"
        if candidate.is_loopback:
            return f"{address} is a loopback address"
        if candidate.is_link_local:
            return f"{address} is a link-local address (metadata services live there)"
        if not candidate.is_global:
            return f"{address} is a private or reserved address"
    return None
