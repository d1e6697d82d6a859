"""AWS Signature Version 4 for the one request shape this consumer sends: a POST with a JSON
body and no query string.

Written here rather than taken from awscrt because, measured on this machine (2,500-byte body,
session token, 20,000 signatures), awscrt's `aws_sign_request` with its request and config
objects costs 73 µs of CPU per call, this signer 18 µs (24 µs with awscrt's request built from
its headers): ~7 µs per event of the 100 µs budget at 7.5 events per call. The tests check every
signature against botocore's `SigV4Auth`, and a capture server re-signs what went on the wire.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any
from urllib.parse import quote, urlsplit


class SigV4:
    """AWS Signature Version 4 for a POST with a JSON body and no query string.

    The canonical request of that shape is fixed but for the date, the body hash and the optional
    session token, so signing is two SHA-256 hashes and one HMAC. The derived key changes with
    the date, the secret (rotated credentials) or nothing else, so it is kept.
    """

    def __init__(self, url: str, region: str, service: str) -> None:
        parts = urlsplit(url)
        self.host = _host(parts.scheme, parts.hostname or "", parts.port)
        self._path = quote(parts.path or "/", safe="/~")
        self._quoted: dict[str, str] = {}  # other operations' paths, quoted once
        self._region, self._service = region, service
        self._key_for: tuple[str, str] | None = None  # (secret, date) of `_pads`
        self._pads: tuple[Any, Any] = (None, None)
        self._second = -1  # the second `_amz_date` is of
        self._amz_date = ""

    def headers(
        self,
        body: bytes,
        access_key: str,
        secret_key: str,
        token: str | None,
        now: float,
        path: str | None = None,
    ) -> dict[str, str]:
        """The headers that sign `body` (to `path`, else the URL's): Host, Content-Type,
        X-Amz-Date, Authorization (+ token)."""
        second = int(now)
        if second != self._second:  # many calls a second: the date is formatted once
            self._second, self._amz_date = second, time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
        amz_date = self._amz_date
        date = amz_date[:8]
        headers = {"Content-Type": "application/json", "Host": self.host, "X-Amz-Date": amz_date}
        canonical = f"content-type:application/json\nhost:{self.host}\nx-amz-date:{amz_date}\n"
        signed = "content-type;host;x-amz-date"
        if token:
            headers["X-Amz-Security-Token"] = token
            canonical += f"x-amz-security-token:{token}\n"
            signed += ";x-amz-security-token"
        canonical_path = self._path
        if path is not None:
            canonical_path = self._quoted.get(path) or self._quoted.setdefault(
                path, quote(path, safe="/~")
            )
        request = (
            f"POST\n{canonical_path}\n\n{canonical}\n{signed}\n{hashlib.sha256(body).hexdigest()}"
        )
        scope = f"{date}/{self._region}/{self._service}/aws4_request"
        digest = hashlib.sha256(request.encode()).hexdigest()
        to_sign = f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{digest}"
        inner, outer = self._signing_pads(secret_key, date)
        inner = inner.copy()
        inner.update(to_sign.encode())
        outer = outer.copy()
        outer.update(inner.digest())  # HMAC-SHA256(signing key, to_sign), RFC 2104
        headers["Authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
            f"SignedHeaders={signed}, Signature={outer.hexdigest()}"
        )
        return headers

    def _signing_pads(self, secret_key: str, date: str) -> tuple[Any, Any]:
        """The derived key's HMAC inner and outer hashes, each already fed its padded key.

        Copying them per call is HMAC without its per-call key setup: 1.5 µs a signature
        against 4.3 for `hmac.digest` (OpenSSL looks the digest up on every call).
        """
        if self._key_for != (secret_key, date):
            key = ("AWS4" + secret_key).encode()
            for part in (date, self._region, self._service, "aws4_request"):
                key = hmac.digest(key, part.encode(), "sha256")
            padded = key.ljust(64, b"\0")  # a SHA-256 block; the key is 32 bytes
            self._pads = (
                hashlib.sha256(bytes(b ^ 0x36 for b in padded)),
                hashlib.sha256(bytes(b ^ 0x5C for b in padded)),
            )
            self._key_for = (secret_key, date)
        return self._pads


def _host(scheme: str, hostname: str, port: int | None) -> str:
    """The Host header as botocore signs it: lower case, IPv6 bracketed, default port left out."""
    host = f"[{hostname}]" if ":" in hostname else hostname
    if port is not None and port != {"http": 80, "https": 443}.get(scheme):
        host = f"{host}:{port}"
    return host
