"""Which addresses a webhook may call: public unicast only."""

from __future__ import annotations

import ipaddress

import pytest

from lockgate.events.targets import TargetProblem, forbidden_address, parse_target

REFUSED = [
    "127.0.0.1",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",
    "100.100.100.200",
    "0.0.0.0",
    "224.0.0.1",
    "255.255.255.255",
    "::1",
    "::",
    "fe80::1",
    "fd00:ec2::254",
    "ff02::1",
    "::ffff:127.0.0.1",
    "::ffff:169.254.169.254",
    "2002:7f00:1::",  # 6to4 around 127.0.0.1
]


@pytest.mark.parametrize("address", REFUSED)
def test_private_and_special_addresses_are_refused(address: str) -> None:
    assert forbidden_address(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert forbidden_address(ipaddress.ip_address(address)) is None


def test_a_target_keeps_its_path_and_query_and_connects_to_an_address() -> None:
    target = parse_target("https://hooks.example.com/in?x=1")
    assert (target.host, target.port, target.path) == ("hooks.example.com", 443, "/in?x=1")
    assert target.url_for("2001:db8::1") == "https://[2001:db8::1]:443/in?x=1"
    assert parse_target("http://[::1]:8000").literal == ipaddress.ip_address("::1")


@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/", "http:///x", "https://user:pw@example.com/", "https://e.com/#f", "x"],
)
def test_malformed_targets_are_refused(url: str) -> None:
    with pytest.raises(TargetProblem):
        parse_target(url)
