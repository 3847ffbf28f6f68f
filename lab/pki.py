"""A throwaway lab CA and server certificates, made with the openssl CLI."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ServerCert:
    cert: Path  # leaf followed by the CA: the chain a server sends, well over one segment
    key: Path
    ca: Path


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def make_ca(directory: Path) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    ca, key = directory / "ca.pem", directory / "ca.key"
    if not ca.exists():
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(ca),
                 "-days", "3", "-subj", "/CN=netstab lab CA")
    return ca, key


def issue(directory: Path, name: str, sans: list[str]) -> ServerCert:
    """A leaf for `sans` (DNS names or IPs) signed by the lab CA in `directory`."""
    ca, ca_key = make_ca(directory)
    key, csr, leaf, chain = (directory / f"{name}.{ext}" for ext in ("key", "csr", "leaf.pem", "pem"))
    ext = directory / f"{name}.ext"
    alt = ",".join(f"IP:{s}" if s.replace(".", "").isdigit() or ":" in s else f"DNS:{s}" for s in sans)
    ext.write_text(f"subjectAltName={alt}\nextendedKeyUsage=serverAuth\n")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={sans[0]}")
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
             "-out", str(leaf), "-days", "3", "-extfile", str(ext))
    chain.write_text(leaf.read_text() + ca.read_text())
    return ServerCert(chain, key, ca)
