"""Resolve a webhook target and refuse private ones (at creation, and again before sending).

The sender connects to an address checked here — never to a name resolved again later —
so a DNS answer that changes between the check and the connection cannot redirect it.
"""

from __future__ import annotations

import ipaddress
import socket

from lockgate.events.targets import (
    IPAddress,
    Target,
    TargetProblem,
    forbidden_address,
    parse_target,
)

__all__ = ["CheckedTarget", "check_target"]

CheckedTarget = tuple[Target, list[IPAddress]]


def _resolve(target: Target) -> list[IPAddress]:
    literal = target.literal
    if literal is not None:
        return [literal]
    try:
        found = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise TargetProblem(f"host {target.host!r} cannot be resolved ({exc})") from None
    addresses: list[IPAddress] = []
    for *_, sockaddr in found:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise TargetProblem(f"host {target.host!r} resolves to no address")
    return addresses


def check_target(url: str, *, allow_private: bool) -> CheckedTarget:
    """The target and the addresses to connect to; :class:`TargetProblem` when refused.

    Every address the host resolves to must be public (one private answer refuses the
    target: a rebinding attacker controls which answer a client picks), unless
    ``allow_private`` (local development).
    """
    target = parse_target(url)
    addresses = _resolve(target)
    if not allow_private:
        for address in addresses:
            why = forbidden_address(address)
            if why is not None:
                shown = "" if target.literal is not None else f"{target.host} resolves to "
                raise TargetProblem(f"refused: {shown}{why}")
    return target, addresses
