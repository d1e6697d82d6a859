"""`consumer.testing.tls`: the local CA and certificates shared by the TLS broker and the HTTPS
emulator are made once per directory, remade when incomplete, and need `openssl`."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from consumer.testing.tls import OpenSslNotFound, ensure_tls_material


def test_made_once_and_reused(tmp_path: Path) -> None:
    first = ensure_tls_material(tmp_path / "tls")
    files = [
        first.ca_file,
        first.server_cert_file,
        first.server_key_file,
        first.client_cert_file,
        first.client_key_file,
    ]
    contents = [path.read_bytes() for path in files]
    again = ensure_tls_material(tmp_path / "tls")
    assert again == first
    assert [path.read_bytes() for path in files] == contents
    first.server_context()  # the key matches the certificate
    client = ssl.create_default_context(cafile=first.ca_file)
    client.load_cert_chain(first.client_cert_file, first.client_key_file)


def test_an_incomplete_directory_is_remade(tmp_path: Path) -> None:
    """A crash midway (or an older layout) leaves no completion mark: everything is made anew,
    so the certificates always match their CA."""
    tls_dir = tmp_path / "tls"
    tls_dir.mkdir()
    (tls_dir / "ca.pem").write_text("stale")
    material = ensure_tls_material(tls_dir)
    assert material.ca_file.read_text().startswith("-----BEGIN CERTIFICATE-----")
    material.server_context()


def test_needs_openssl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(OpenSslNotFound, match="openssl"):
        ensure_tls_material(tmp_path / "tls")
