"""Pinned connections over real TLS: the worker connects to the checked address, while SNI and
the certificate check still speak to the host name."""

from __future__ import annotations

import datetime
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.receiver import rebinding
from wanedit.workers.client import make_session
from wanedit.workers.pinned import guarded_request

pytestmark = pytest.mark.integration


def self_signed(tmp_path: Path, name: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@contextmanager
def tls_server(cert: Path, key: Path, seen: list[tuple[str | None, str]]) -> Iterator[int]:
    """HTTPS on 127.0.0.2; records (SNI name, Host header) of every GET."""
    names: list[str | None] = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda sock, name, ctx: names.append(name)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append((names[-1] if names else None, self.headers["host"]))
            self.send_response(200)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.2", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_https_is_pinned_to_the_checked_address_with_sni_and_certificate_for_the_name(tmp_path):
    cert, key = self_signed(tmp_path, "results.wanedit.test")
    seen: list[tuple[str | None, str]] = []
    session = make_session()
    session.verify = str(cert)
    calls: list[str] = []
    with tls_server(cert, key, seen) as port:
        response = guarded_request(
            session,
            "GET",
            f"https://results.wanedit.test:{port}/r.png",
            allow_private=True,
            timeout=(2, 5),
            resolve=rebinding("127.0.0.2", "127.0.0.1", calls),
        )
        with response:
            assert (response.status_code, response.content) == (200, b"ok")
    assert calls == ["results.wanedit.test"]
    assert seen == [("results.wanedit.test", f"results.wanedit.test:{port}")]


def test_https_to_a_checked_address_still_refuses_a_certificate_for_another_name(tmp_path):
    cert, key = self_signed(tmp_path, "other.wanedit.test")
    session = make_session()
    session.verify = str(cert)
    with tls_server(cert, key, []) as port, pytest.raises(requests.exceptions.SSLError):
        guarded_request(
            session,
            "GET",
            f"https://results.wanedit.test:{port}/r.png",
            allow_private=True,
            timeout=(2, 5),
            resolve=rebinding("127.0.0.2", "127.0.0.1", []),
        )


def test_an_ipv6_literal_is_connected_to_in_any_of_its_spellings():
    class Server(ThreadingHTTPServer):
        address_family = socket.AF_INET6

    hosts: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hosts.append(self.headers["host"])
            self.send_response(200)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = Server(("::1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    try:
        for url in (f"http://[::1]:{port}/x", f"http://[0:0:0:0:0:0:0:1]:{port}/x"):
            with guarded_request(
                make_session(), "GET", url, allow_private=True, timeout=(2, 5)
            ) as response:
                assert response.content == b"ok"
    finally:
        server.shutdown()
        server.server_close()
    assert hosts == [f"[::1]:{port}", f"[::1]:{port}"]
