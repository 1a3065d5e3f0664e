"""Which URLs a worker may fetch itself: http(s) only, spelled one way, and only public addresses.

A result URL comes from the provider's answer and a callback URL from a request, so a worker
must not be steered into its own network (cloud metadata, Redis, an admin page). The URL is
read with urllib3's `parse_url`, the parser that connects, and refused when another parser
would read it differently (a backslash, user info, an encoded host, an odd IPv4 spelling).
Its host is resolved once; every answer must be global, and the connection goes to the checked
address (`Checked.address`), never to a second DNS answer. WANEDIT_ALLOW_PRIVATE_URLS=true lifts
the address rule (not the spelling rules) for development and tests.
Pure apart from name resolution, which is injected.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

from wanedit.errors import UrlNotAllowed

SCHEMES = ("http", "https")
DEFAULT_PORTS = {"http": 80, "https": 443}
HOST_MAX = 253
# 100.64.0.0/10: carrier-grade NAT, shared address space; not private, not global either.
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
# NAT64's well-known prefix carries an IPv4 address in its last 32 bits.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_LABEL = re.compile(r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?")
# A last label that is a number (decimal, octal or hex) makes the host an IPv4 address to
# browsers and inet_aton: "2130706433", "0x7f.1" and "127.1" all mean 127.0.0.1.
_NUMERIC = re.compile(r"(0x[0-9a-f]*|[0-9]+)")

Resolver = Callable[..., list[Any]]
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Target:
    """A URL as the connecting parser reads it, once every parser agrees on it."""

    url: str
    scheme: str
    host: str  # lower case; an IPv6 literal without brackets
    port: int

    @property
    def netloc(self) -> str:
        """The Host header's value: the host, and the port unless it is the scheme's default."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"


@dataclass(frozen=True)
class Checked:
    """A target and the one address it was checked at: connect there and nowhere else."""

    target: Target
    address: str


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


def parse_target(url: str) -> Target:
    """Read `url` as the connecting parser does; UrlNotAllowed unless it is http(s) with a host
    spelled so that every parser reads the same host and port. Makes no network call."""
    if not isinstance(url, str) or not url:
        raise UrlNotAllowed("?", "the URL is empty")
    named = url.split(":", 1)[0].strip().lower() if ":" in url else ""
    if named not in SCHEMES:
        raise UrlNotAllowed("?", f"scheme {named[:20] or 'none'!r} is not http or https")
    bad = next((c for c in url if c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F), None)
    if bad is not None:
        raise UrlNotAllowed("?", f"the URL holds whitespace or a control character ({bad!r})")
    if "\\" in url:
        # urlsplit reads "http://127.0.0.1:1\@8.8.8.8/" as host 8.8.8.8, urllib3 as 127.0.0.1.
        raise UrlNotAllowed("?", "the URL holds a backslash, which parsers read differently")
    try:
        split = urlsplit(url)
        split_port = split.port
        if not split.netloc.isascii():
            raise UrlNotAllowed("?", "the URL's host is not ASCII; write it in its xn-- form")
        parsed = parse_url(url)
    except (LocationParseError, ValueError) as exc:
        raise UrlNotAllowed("?", f"the URL cannot be parsed ({str(exc)[:120]})") from None
    scheme = (parsed.scheme or "").lower()
    if scheme not in SCHEMES or split.scheme.lower() != scheme:
        shown = (split.scheme or parsed.scheme or "none")[:20]
        raise UrlNotAllowed("?", f"scheme {shown!r} is not http or https")
    if not parsed.host:
        raise UrlNotAllowed("?", "the URL has no host")
    authority = split.netloc
    if parsed.auth is not None or split.username is not None or "@" in authority:
        raise UrlNotAllowed("?", "the URL holds user info ('@' before the host); none is allowed")
    if "%" in authority:
        raise UrlNotAllowed("?", "the URL's host is percent-encoded or has an IPv6 zone")
    host = parsed.host.lower()
    other = split.hostname or ""
    if host.startswith("["):
        host, other = _ipv6_literal(host[1:-1]), _ipv6_literal(other)
    else:
        _check_name(host)
    if host != other or parsed.port != split_port:
        raise UrlNotAllowed(host, "parsers read the URL's host or port differently")
    port = parsed.port if parsed.port is not None else DEFAULT_PORTS[scheme]
    if not 0 < port < 65536:
        raise UrlNotAllowed(host, f"port {port} is outside 1 to 65535")
    return Target(url=parsed.url, scheme=scheme, host=host, port=port)


def _ipv6_literal(text: str) -> str:
    try:
        return str(ipaddress.IPv6Address(text))
    except ValueError:
        raise UrlNotAllowed("?", f"[{text[:60]}] is not an IPv6 address") from None


def _check_name(host: str) -> None:
    """A DNS name of letters, digits, '-' and '_', or a dotted-quad IPv4 address as written."""
    if host.endswith("."):
        raise UrlNotAllowed(host, "the host ends with a dot; write it without")
    labels = host.split(".")
    if _NUMERIC.fullmatch(labels[-1]):
        try:
            canonical = str(ipaddress.IPv4Address(host))
        except ValueError:
            canonical = None
        if canonical != host:
            raise UrlNotAllowed(
                host, "the host is an IPv4 address not written as four decimal numbers 0-255"
            )
        return
    if len(host) > HOST_MAX or not all(_LABEL.fullmatch(label) for label in labels):
        raise UrlNotAllowed(host[:80], "the host is not a DNS name (letters, digits, '-' and '.')")


def check_url(
    url: str, *, allow_private: bool = False, resolve: Resolver = socket.getaddrinfo
) -> Checked:
    """The target of `url` and the address to connect to: UrlNotAllowed unless the URL passes
    `parse_target` and every address of its host is public.

    The name is resolved once, here; connect to `Checked.address`, never resolve it again.
    A name that cannot be resolved raises the resolver's OSError (worth retrying)."""
    target = parse_target(url)
    host = target.host
    try:
        literal: Address | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        infos = resolve(host, target.port, type=socket.SOCK_STREAM)
        if not infos:
            raise UrlNotAllowed(host, "the host resolves to no address")
        addresses = [_answer(host, info) for info in infos]
    if not allow_private:
        for address in addresses:
            problem = address_problem(address)
            if problem:
                raise UrlNotAllowed(
                    host,
                    f"it resolves to {address}: {problem} "
                    "(set WANEDIT_ALLOW_PRIVATE_URLS=true only for development)",
                )
    return Checked(target, str(addresses[0]))


def _answer(host: str, info: Any) -> Address:
    text = str(info[4][0])
    if "%" in text:
        # A scoped answer ("fe80::1%eth0") names an interface: never a public address.
        raise UrlNotAllowed(host, f"it resolves to {text!r}, an address with a zone")
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise UrlNotAllowed(host, f"it resolves to {text!r}, not an IP address") from None


__all__ = ["SCHEMES", "Checked", "Target", "address_problem", "check_url", "parse_target"]
