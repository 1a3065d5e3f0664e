"""The URL guard: which URLs a worker may fetch itself. Resolution is the real getaddrinfo for
IP literals and `localhost` (no network), and an injected table for names."""

from __future__ import annotations

import ipaddress
import socket

import pytest

from wanedit.errors import UrlNotAllowed
from wanedit.urlguard import address_problem, check_url


def table(answers: dict[str, list[str]]):
    """A resolver answering like getaddrinfo from a fixed table of names."""

    def resolve(host: str, port: int, **_: object) -> list[tuple]:
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in answers[host]
        ]

    return resolve


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("8.8.8.8", None),
        ("2001:4860:4860::8888", None),
        ("127.0.0.1", "loopback address"),
        ("127.255.0.9", "loopback address"),
        ("0.0.0.0", "unspecified address"),
        ("10.1.2.3", "private address"),
        ("172.16.0.1", "private address"),
        ("192.168.1.1", "private address"),
        ("169.254.169.254", "link-local address"),
        ("100.64.0.1", "carrier-grade NAT address"),
        ("224.0.0.1", "multicast address"),
        ("240.0.0.1", "reserved address"),
        ("255.255.255.255", "reserved address"),
        ("192.0.2.10", "private address"),  # documentation range
        ("::1", "loopback address"),
        ("::", "unspecified address"),
        ("fe80::1", "link-local address"),
        ("fc00::1", "private address"),
        ("ff02::1", "multicast address"),
        ("::ffff:127.0.0.1", "IPv4-mapped loopback address"),
        ("::ffff:10.0.0.1", "IPv4-mapped private address"),
        ("::ffff:8.8.8.8", None),
        ("64:ff9b::7f00:1", "NAT64 loopback address"),
        ("2002:a9fe:a9fe::1", "6to4 link-local address"),
    ],
)
def test_address_table(address, problem):
    assert address_problem(ipaddress.ip_address(address)) == problem


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        # Spellings of loopback that getaddrinfo (inet_aton) itself turns into 127.0.0.1.
        ("http://127.0.0.1:8080/r.png", "resolves to 127.0.0.1: loopback"),
        ("http://localhost/r.png", "loopback"),
        ("http://2130706433/r.png", "resolves to 127.0.0.1: loopback"),
        ("http://0177.0.0.1/r.png", "resolves to 127.0.0.1: loopback"),
        ("http://0x7f.1/r.png", "resolves to 127.0.0.1: loopback"),
        ("http://127.1/r.png", "resolves to 127.0.0.1: loopback"),
        ("http://0/r.png", "unspecified"),
        ("http://[::1]/r.png", "resolves to ::1: loopback"),
        ("http://[::ffff:127.0.0.1]/r.png", "IPv4-mapped loopback"),
        ("http://[::ffff:169.254.169.254]/latest", "IPv4-mapped link-local"),
        ("https://169.254.169.254/latest/meta-data", "link-local"),
        ("http://10.0.0.5/x", "private"),
        ("http://100.100.100.200/x", "carrier-grade NAT"),
    ],
)
def test_private_addresses_are_refused(url, reason):
    with pytest.raises(UrlNotAllowed, match=reason) as raised:
        check_url(url)
    assert "WANEDIT_ALLOW_PRIVATE_URLS" in str(raised.value)
    # ...and allowed when the setting says so (development, tests).
    check_url(url, allow_private=True)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("file:///etc/passwd", "scheme 'file' is not http or https"),
        ("ftp://example.com/a.png", "scheme 'ftp' is not http or https"),
        ("gopher://example.com/", "scheme 'gopher'"),
        ("/relative/path.png", "scheme 'none'"),
        ("http:///no-host", "no host"),
        ("http://example.com:99999/", "cannot be parsed"),
    ],
)
def test_only_http_and_https_with_a_host(url, reason):
    for allow_private in (False, True):
        with pytest.raises(UrlNotAllowed, match=reason):
            check_url(url, allow_private=allow_private, resolve=table({}))


def test_every_resolved_address_must_be_public():
    resolve = table(
        {
            "cdn.example": ["93.184.216.34", "2606:2800:220:1::1"],
            "mixed.example": ["93.184.216.34", "10.0.0.7"],
            "rebind.example": ["::ffff:192.168.0.1"],
        }
    )
    check_url("https://cdn.example/r.png?Expires=1&Signature=x", resolve=resolve)
    with pytest.raises(UrlNotAllowed) as raised:
        check_url("https://mixed.example/r.png", resolve=resolve)
    assert raised.value.host == "mixed.example"
    assert str(raised.value).startswith("mixed.example: it resolves to 10.0.0.7: private address")
    with pytest.raises(UrlNotAllowed, match="IPv4-mapped private"):
        check_url("HTTPS://rebind.example/", resolve=resolve)


def test_a_name_that_does_not_resolve_is_an_os_error_not_a_refusal():
    with pytest.raises(OSError):
        check_url("https://nowhere.example/", resolve=table({}))
