"""Result URL signatures: valid until Expires, bound to path and secret."""

from urllib.parse import parse_qs, urlsplit

from wanedit.sandbox.signing import UrlSigner

PATH = "/results/abc/0.png"


def parts(signed: str) -> tuple[str, str, str]:
    url = urlsplit(signed)
    query = parse_qs(url.query)
    return url.path, query["Expires"][0], query["Signature"][0]


def test_signed_url_is_valid_until_it_expires() -> None:
    signer = UrlSigner(b"secret")
    path, expires, signature = parts(signer.sign(PATH, 1000.2))
    assert path == PATH
    assert expires == "1001"
    assert signer.check(path, expires, signature, now=1001.0) == ""
    assert "expired" in signer.check(path, expires, signature, now=1001.5)


def test_signature_binds_path_expiry_and_secret() -> None:
    signer = UrlSigner(b"secret")
    _, expires, signature = parts(signer.sign(PATH, 1000))
    assert signer.check("/results/abc/1.png", expires, signature, now=0) != ""
    assert signer.check(PATH, "2000", signature, now=0) != ""
    assert UrlSigner(b"other").check(PATH, expires, signature, now=0) != ""
    assert signer.check(PATH, None, None, now=0) != ""
    assert signer.check(PATH, "soon", signature, now=0) != ""
