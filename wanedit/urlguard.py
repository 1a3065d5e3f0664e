"""Which URLs a worker may fetch itself: http(s) only, and only public addresses.

A result URL comes from the provider's answer, so a worker must not be steered into fetching
from its own network (cloud metadata, Redis, an admin page). Every address the host resolves
to must be global; WANEDIT_ALLOW_PRIVATE_URLS=true lifts that for development and tests.
Pure apart from name resolution, which is injected.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from wanedit.errors import UrlNotAllowed

SCHEMES = ("http", "https")
# 100.64.0.0/10: carrier-grade NAT, shared address space; not private, not global either.
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
# NAT64's well-known prefix carries an IPv4 address in its last 32 bits.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

Resolver = Callable[..., list[Any]]
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def address_problem(address: Address) -> str | None:
    """Why a worker must not connect to `address`, or None when it is a public address."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            kind, inner = embedded
            problem = address_problem(inner)
            return f"{kind} {problem}" if problem else None
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("carrier-grade NAT", isinstance(address, ipaddress.IPv4Address) and address in _CGNAT),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
        ("non-global", not address.is_global),
    )
    for name, hit in checks:
        if hit:
            return f"{name} address"
    return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> tuple[str, ipaddress.IPv4Address] | None:
    """The IPv4 address an IPv6 address stands for (mapped, NAT64, 6to4), judged in its place."""
    if address.ipv4_mapped is not None:
        return "IPv4-mapped", address.ipv4_mapped
    if address in _NAT64:
        return "NAT64", ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return "6to4", address.sixtofour
    return None


def _host(url: str) -> tuple[str, int]:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UrlNotAllowed("?", f"the URL cannot be parsed ({exc})") from None
    if parts.scheme.lower() not in SCHEMES:
        scheme = parts.scheme or "none"
        raise UrlNotAllowed(parts.hostname or "?", f"scheme {scheme!r} is not http or https")
    if not parts.hostname:
        raise UrlNotAllowed("?", "the URL has no host")
    return parts.hostname, port or (443 if parts.scheme.lower() == "https" else 80)


def check_url(
    url: str, *, allow_private: bool = False, resolve: Resolver = socket.getaddrinfo
) -> None:
    """Raise UrlNotAllowed unless `url` is http(s) and every address of its host is public.

    A name that cannot be resolved raises the resolver's OSError (worth retrying)."""
    host, port = _host(url)
    if allow_private:
        return
    infos = resolve(host, port, type=socket.SOCK_STREAM)
    if not infos:
        raise UrlNotAllowed(host, "the host resolves to no address")
    for info in infos:
        # IPv6 socket addresses may carry a zone ("fe80::1%eth0"); the address is what counts.
        text = str(info[4][0]).split("%", 1)[0]
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            raise UrlNotAllowed(host, f"it resolves to {text!r}, not an IP address") from None
        problem = address_problem(address)
        if problem:
            raise UrlNotAllowed(
                host,
                f"it resolves to {address}: {problem} "
                "(set WANEDIT_ALLOW_PRIVATE_URLS=true only for development)",
            )


__all__ = ["SCHEMES", "address_problem", "check_url"]
