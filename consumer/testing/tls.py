"""Throwaway TLS material for the local servers: the TLS Kafka broker and the HTTPS emulator.

``openssl`` (the command line, so no Python crypto dependency) makes a CA, a server certificate
for every name a local client may dial (``127.0.0.1``, ``::1``, ``localhost``) and a client
certificate for mutual TLS, with unencrypted PKCS#8 keys in PEM: Kafka reads PEM directly (no
keytool or JKS), and Python's ``ssl``, botocore and librdkafka all take a PEM CA bundle.
Stdlib only.
"""

from __future__ import annotations

import fcntl
import secrets
import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

#: Who the server certificate is for. Clients check these: librdkafka
#: (``ssl.endpoint.identification``) and urllib3 or the AWS CRT (hostname verification).
SERVER_NAMES = ("IP:127.0.0.1", "IP:::1", "DNS:localhost")

# Key identifiers explicitly: strict verifiers (Python 3.13's VERIFY_X509_STRICT) require them.
_LEAF_EXT = (
    "basicConstraints=CA:FALSE\n"
    "keyUsage=critical,digitalSignature,keyEncipherment\n"
    "subjectKeyIdentifier=hash\n"
    "authorityKeyIdentifier=keyid,issuer\n"
)
_SERVER_EXT = _LEAF_EXT + f"extendedKeyUsage=serverAuth\nsubjectAltName={','.join(SERVER_NAMES)}\n"
_CLIENT_EXT = _LEAF_EXT + "extendedKeyUsage=clientAuth\n"
_COMPLETE = ".complete"  # written after every other file: a crash midway leaves none


class TlsMaterialError(RuntimeError):
    """``openssl`` failed to make a key or certificate."""


class OpenSslNotFound(TlsMaterialError):
    """No ``openssl`` on PATH: the machine cannot make TLS material (callers may skip)."""


@dataclass(frozen=True)
class TlsMaterial:
    """Where the files are. The CA's key stays in the directory too, unused after signing."""

    directory: Path

    @property
    def ca_file(self) -> Path:
        """The CA certificate (PEM) clients trust: ``AWS_CA_BUNDLE``, ``ssl.ca.location``."""
        return self.directory / "ca.pem"

    @property
    def server_cert_file(self) -> Path:
        return self.directory / "server.pem"

    @property
    def server_key_file(self) -> Path:
        return self.directory / "server.key"

    @property
    def client_cert_file(self) -> Path:
        return self.directory / "client.pem"

    @property
    def client_key_file(self) -> Path:
        return self.directory / "client.key"

    def server_context(self) -> ssl.SSLContext:
        """A server-side context presenting the server certificate, TLS 1.2 or later."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.server_cert_file, self.server_key_file)
        return context


def ensure_tls_material(tls_dir: Path) -> TlsMaterial:
    """Make the CA, server and client certificates in ``tls_dir`` unless they are there already.

    Made once per directory and reused, so a long-lived directory keeps one CA that clients can
    be pointed at. A lock file serializes processes that start at once on the same directory.
    """
    material = TlsMaterial(tls_dir)
    if (tls_dir / _COMPLETE).is_file():
        return material
    openssl = shutil.which("openssl")
    if openssl is None:
        raise OpenSslNotFound("'openssl' not found on PATH; local TLS certificates need it")
    tls_dir.mkdir(parents=True, exist_ok=True)
    with (tls_dir / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (tls_dir / _COMPLETE).is_file():  # another process may have made them meanwhile
            _make(openssl, tls_dir)
            (tls_dir / _COMPLETE).write_text("")
    return material


def _make(openssl: str, tls_dir: Path) -> None:
    def run(*args: str) -> None:
        res = subprocess.run([openssl, *args], cwd=tls_dir, capture_output=True, text=True)
        if res.returncode != 0:
            raise TlsMaterialError(f"openssl {args[0]} failed: {res.stderr.strip()[-2000:]}")

    run("req", "-x509", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
        "-out", "ca.pem", "-days", "365", "-subj", "/CN=personalize-consumer test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")  # fmt: skip
    for name, subject, ext in (
        ("server", "/CN=localhost", _SERVER_EXT),
        ("client", "/CN=personalize-consumer", _CLIENT_EXT),
    ):
        (tls_dir / f"{name}.ext").write_text(ext)
        run("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key",
            "-out", f"{name}.csr", "-subj", subject)  # fmt: skip
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-set_serial", str(secrets.randbits(63)), "-days", "365", "-extfile", f"{name}.ext",
            "-out", f"{name}.pem")  # fmt: skip
