"""The URL guard: which URLs a worker may fetch itself. Resolution is the real getaddrinfo for
IP literals and `localhost` (no network), and an injected table for names."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

import pytest

from wanedit.errors import UrlNotAllowed
from wanedit.urlguard import address_problem, check_url, parse_target


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
        ("http://127.0.0.1:8080/r.png", "resolves to 127.0.0.1: loopback"),
        ("http://localhost/r.png", "loopback"),
        ("http://0.0.0.0/r.png", "unspecified"),
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


def never(*args: object, **kwargs: object) -> list[tuple]:
    raise AssertionError(f"a refused spelling must not be resolved ({args})")


PORT = 6379
DISAGREEING = [
    # urlsplit reads the host after the last '@' (8.8.8.8); urllib3, which connects, reads
    # 127.0.0.1 and puts the rest in the path.
    (f"http://127.0.0.1:{PORT}\\@8.8.8.8/", "backslash"),
    ("http://8.8.8.8\\@127.0.0.1/", "backslash"),
    ("https://cdn.example\\.evil.example/r.png", "backslash"),
    # User info: who reads which '@'.
    ("http://8.8.8.8@127.0.0.1/", "user info"),
    ("http://user:pass@cdn.example/r.png", "user info"),
    ("http://a@b@8.8.8.8/", "user info"),
    (f"http://127.0.0.1%2f@8.8.8.8:{PORT}/", "user info"),
    (f"http://127.0.0.1:{PORT}%40@8.8.8.8/", "user info"),
    # Percent-encoded hosts and IPv6 zone ids.
    ("http://%31%32%37.0.0.1/", "percent-encoded"),
    ("http://ex%61mple.com/", "percent-encoded"),
    ("http://[fe80::1%25eth0]/", "percent-encoded or has an IPv6 zone"),
    ("http://[::1%25lo]:8080/", "percent-encoded or has an IPv6 zone"),
    # Whitespace and control characters, which parsers strip, keep or refuse.
    (" http://8.8.8.8/", "whitespace"),
    ("http://8.8.8.8 /", "whitespace"),
    ("http://8.8.8.8\t/", "whitespace"),
    ("http://127.0.0.1\n.cdn.example/", "whitespace"),
    ("http://cdn.example/r.png\r\nHost: 127.0.0.1", "whitespace"),
    ("http://cdn.example\x00.127.0.0.1/", "control character"),
    ("http://cdn.example/\x7f", "control character"),
    # IPv4 written otherwise than as a dotted quad: inet_aton reads every one as 127.0.0.1.
    ("http://2130706433/", "not written as four decimal numbers"),
    ("http://0x7f.1/", "not written as four decimal numbers"),
    ("http://0x7f000001/", "not written as four decimal numbers"),
    ("http://0177.0.0.1/", "not written as four decimal numbers"),
    ("http://017700000001/", "not written as four decimal numbers"),
    ("http://127.1/", "not written as four decimal numbers"),
    ("http://127.0.1/", "not written as four decimal numbers"),
    ("http://127.000.000.001/", "not written as four decimal numbers"),
    ("http://0/", "not written as four decimal numbers"),
    ("http://1.2.3.4.5/", "not written as four decimal numbers"),
    ("http://256.1.1.1/", "not written as four decimal numbers"),
    # Trailing dots, empty labels and names that are not DNS names.
    ("http://localhost./", "ends with a dot"),
    ("http://cdn.example./r.png", "ends with a dot"),
    ("http://127.0.0.1./", "ends with a dot"),
    ("http://cdn..example/", "not a DNS name"),
    ("http://-cdn.example/", "not a DNS name"),
    ("http://cdn.ex*ample/", "not a DNS name"),
    ("http://bücher.example/", "not ASCII"),
    ("http://127.0.0.1\u3002cdn.example/", "not ASCII"),
    # IPv6 literals that are not addresses.
    ("http://[127.0.0.1]/", "cannot be parsed"),
    ("http://[::1/", "cannot be parsed"),
    # Ports that do not agree, or are out of range.
    ("http://cdn.example:0/", "port 0 is outside"),
    ("http://cdn.example:+80/", "cannot be parsed"),
    ("http://cdn.example:80:81/", "cannot be parsed"),
]


@pytest.mark.parametrize(("url", "reason"), DISAGREEING)
def test_a_url_whose_parsers_disagree_is_refused(url, reason):
    """Refused as spelled, before any name is resolved, whatever WANEDIT_ALLOW_PRIVATE_URLS."""
    for allow_private in (False, True):
        with pytest.raises(UrlNotAllowed, match=reason):
            check_url(url, allow_private=allow_private, resolve=never)


@pytest.mark.parametrize(
    ("url", "host", "port", "netloc"),
    [
        ("https://cdn.example/r.png?Expires=1&Signature=a%2Fb", "cdn.example", 443, "cdn.example"),
        ("HTTPS://CDN.Example:8443/a%20b.png", "cdn.example", 8443, "cdn.example:8443"),
        ("http://cdn.example/a@b.png?x=@y#@z", "cdn.example", 80, "cdn.example"),
        ("http://img_1.cdn-2.example:80/x", "img_1.cdn-2.example", 80, "img_1.cdn-2.example"),
        ("http://93.184.216.34/x", "93.184.216.34", 80, "93.184.216.34"),
        (
            "http://[2606:2800:220:1::1]:8080/x",
            "2606:2800:220:1::1",
            8080,
            "[2606:2800:220:1::1]:8080",
        ),
    ],
)
def test_a_url_every_parser_reads_alike_is_taken_as_written(url, host, port, netloc):
    target = parse_target(url)
    assert (target.host, target.port, target.netloc) == (host, port, netloc)
    assert urlsplit(target.url).hostname == host.lower()


def test_the_host_is_resolved_once_and_the_checked_address_is_the_one_to_connect_to():
    answers = iter([["93.184.216.34", "2606:2800:220:1::1"], ["127.0.0.1"]])
    calls: list[str] = []

    def rebinding(host: str, port: int, **_: object) -> list[tuple]:
        calls.append(host)
        return table({host: next(answers)})(host, port)

    checked = check_url("https://cdn.example/r.png", resolve=rebinding)
    assert checked.address == "93.184.216.34"
    assert calls == ["cdn.example"]
    # An IP literal is its own answer: no resolver is asked.
    assert check_url("http://93.184.216.34/r.png", resolve=never).address == "93.184.216.34"


def test_a_scoped_answer_is_never_a_public_address():
    resolve = table({"scoped.example": ["fe80::1%eth0"]})
    with pytest.raises(UrlNotAllowed, match="an address with a zone"):
        check_url("http://scoped.example/", resolve=resolve)


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
