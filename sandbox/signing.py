"""Signed result URLs, shaped like OSS presigned URLs: ``?Expires=<unix>&Signature=<hex>``.

The signature is an HMAC-SHA256 of the path and the expiry under a per-server random secret,
so a URL works only on the server that issued it and only until it expires.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from urllib.parse import urlencode


class UrlSigner:
    """Signs and checks result paths."""

    def __init__(self, secret: bytes | None = None) -> None:
        self._secret = secret if secret is not None else secrets.token_bytes(32)

    def signature(self, path: str, expires: int) -> str:
        message = f"{path}\n{expires}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def sign(self, path: str, expires_at: float) -> str:
        """``path`` with its query string, valid until ``expires_at`` (unix seconds)."""
        expires = math.ceil(expires_at)
        query = urlencode({"Expires": expires, "Signature": self.signature(path, expires)})
        return f"{path}?{query}"

    def check(self, path: str, expires: str | None, signature: str | None, now: float) -> str:
        """An empty string when the URL is valid at ``now``, else why it is refused."""
        if not expires or not signature or not expires.isdigit():
            return "Request has expired or is missing a signature."
        expected = self.signature(path, int(expires))
        if not hmac.compare_digest(expected, signature):
            return "The request signature we calculated does not match the signature you provided."
        if now > int(expires):
            return "Request has expired."
        return ""
