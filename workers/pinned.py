"""HTTP to URLs wanedit was given (result URLs, callback URLs): checked, pinned and bounded.

The URL guard resolves a host once and checks every answer; `PinnedAdapter` then connects to
that checked address while the request keeps its host name in the Host header and, for https,
in SNI and the certificate check. A second DNS answer (rebinding) is never asked for.
Redirects are never followed here: a caller checks each hop through `guarded_request` again.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter

from wanedit.errors import UrlNotAllowed
from wanedit.urlguard import Checked, Resolver, check_url

_PIN = "wanedit_pin"
# What reading a body that was cut short, stalled, reset or garbled raises.
BODY_ERRORS: tuple[type[Exception], ...] = (
    urllib3.exceptions.HTTPError,
    requests.RequestException,
    OSError,
)


class PinnedAdapter(HTTPAdapter):
    """An HTTPAdapter that sends a pinned request to its checked address, without a proxy.

    A request without a pin is sent as a plain HTTPAdapter sends it."""

    def send(
        self, request: requests.PreparedRequest, *args: Any, **kwargs: Any
    ) -> requests.Response:
        if getattr(request, _PIN, None) is not None:
            # A proxy would resolve the name itself; a pinned request goes straight there.
            kwargs["proxies"] = {}
        return super().send(request, *args, **kwargs)

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: Any, cert: Any = None
    ) -> Any:
        attributes = super().build_connection_pool_key_attributes(request, verify, cert)
        checked: Checked | None = getattr(request, _PIN, None)
        if checked is None:
            return attributes
        host_params: dict[str, Any] = dict(attributes[0])
        pool_kwargs: dict[str, Any] = dict(attributes[1])
        target = checked.target
        host = str(host_params["host"]).lower().strip("[]")
        if not _same_host(host, target.host) or host_params["port"] not in (target.port, None):
            raise UrlNotAllowed(target.host, f"the request names {host}, not the checked host")
        address = f"[{checked.address}]" if ":" in checked.address else checked.address
        host_params = {**host_params, "host": address, "port": target.port}
        if target.scheme == "https":
            # TLS speaks to the name: SNI and the certificate are the host's, not the address's.
            pool_kwargs = {
                **pool_kwargs,
                "server_hostname": target.host,
                "assert_hostname": target.host,
            }
        return host_params, pool_kwargs


def _same_host(host: str, checked: str) -> bool:
    if ":" in host:  # an IPv6 literal, written in any of its spellings
        try:
            return ipaddress.ip_address(host) == ipaddress.ip_address(checked)
        except ValueError:
            return False
    return host == checked


def guarded_request(
    session: requests.Session,
    method: str,
    url: str,
    *,
    allow_private: bool,
    timeout: tuple[float, float],
    resolve: Resolver = socket.getaddrinfo,
    headers: dict[str, str] | None = None,
    data: bytes | None = None,
) -> requests.Response:
    """Send one request to `url` through the URL guard, to the address it checked; the answer
    is streamed (read it with `read_capped` or as a stream) and redirects are not followed.

    Raises UrlNotAllowed for a refused URL, OSError when its name cannot be resolved, and what
    requests raises for the connection."""
    checked = check_url(url, allow_private=allow_private, resolve=resolve)
    target = checked.target
    if not isinstance(session.get_adapter(target.url), PinnedAdapter):
        raise TypeError("a guarded request needs a session made by make_session()")
    prepared = session.prepare_request(
        requests.Request(
            method, target.url, headers={**(headers or {}), "Host": target.netloc}, data=data
        )
    )
    setattr(prepared, _PIN, checked)
    return session.send(prepared, stream=True, timeout=timeout, allow_redirects=False)


def read_capped(response: requests.Response, cap: int) -> bytes:
    """At most `cap` bytes of the answer's body (decoded), and no more are read."""
    chunks: list[bytes] = []
    left = cap
    while left > 0:
        chunk = response.raw.read(min(left, 64 * 1024), decode_content=True)
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


__all__ = ["BODY_ERRORS", "PinnedAdapter", "guarded_request", "read_capped"]
