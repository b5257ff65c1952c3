"""The self-signed test PKI ``gridflex serve`` creates on first start.

IEEE 2030.5 requires mutual TLS with ECDSA P-256 certificates (IEEE 2030.5-2018 clause 6.11,
CSIP section 5.2.1); the device identity is the certificate itself (:mod:`gridflex.sep2.identity`).
This module writes a test CA, a server certificate for the host names given, and client
certificates (aggregators and devices) with a ``clients.json`` manifest of their LFDI and SFDI, so
a user can point a client at the server at once. Production deployments use their own PKI: pass
its files to :class:`TlsFiles`.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gridflex.errors import InputError
from gridflex.sep2.identity import lfdi_from_certificate, sfdi_from_lfdi

DEFAULT_CLIENTS: tuple[tuple[str, str], ...] = (
    ("aggregator-1", "aggregator"),
    ("device-1", "device"),
    ("device-2", "device"),
    ("device-3", "device"),
)
"""Client certificates written by default: (name, role)."""

_VALIDITY = dt.timedelta(days=825)


@dataclass(frozen=True)
class TlsFiles:
    """The files a mutual-TLS server needs: its certificate and key, and the CA clients chain to."""

    server_cert: Path
    server_key: Path
    ca_cert: Path


@dataclass(frozen=True)
class ClientIdentity:
    """A client certificate written by :func:`ensure_test_pki`."""

    name: str
    role: str
    cert: Path
    key: Path
    lfdi: str
    sfdi: int


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    os.chmod(path, 0o600)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "gridflex test PKI"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _builder(
    subject: str, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
    )


def _load_ca(directory: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert = x509.load_pem_x509_certificate((directory / "ca.pem").read_bytes())
    key = serialization.load_pem_private_key((directory / "ca.key").read_bytes(), None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise InputError(f"{directory / 'ca.key'} is not an EC private key", "delete the folder")
    return cert, key


def _make_ca(directory: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key()
    cert = (
        _builder("gridflex test CA", _name("gridflex test CA"), key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    _write_key(directory / "ca.key", key)
    (directory / "ca.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert, key


def issue_certificate(
    directory: Path,
    name: str,
    *,
    server_hosts: tuple[str, ...] = (),
) -> tuple[Path, Path]:
    """Issue a certificate signed by the test CA in ``directory``; returns (cert, key) paths.

    With ``server_hosts`` it is a server certificate for those names / IP addresses, otherwise a
    client certificate. Files are ``<name>.pem`` and ``<name>.key``.
    """
    ca_cert, ca_key = _load_ca(directory)
    key = _key()
    builder = _builder(name, ca_cert.subject, key.public_key()).add_extension(
        x509.BasicConstraints(ca=False, path_length=None), critical=True
    )
    if server_hosts:
        alt: list[x509.GeneralName] = []
        for host in server_hosts:
            try:
                alt.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                alt.append(x509.DNSName(host))
        builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
        # a 2030.5 server is also a TLS client when it POSTs notifications to subscribers
        usages = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    else:
        usages = [ExtendedKeyUsageOID.CLIENT_AUTH]
    builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    cert_path = directory / f"{name}.pem"
    key_path = directory / f"{name}.key"
    _write_key(key_path, key)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def client_identity(directory: Path, name: str, role: str) -> ClientIdentity:
    """Describe the client certificate ``<name>.pem`` in ``directory`` (LFDI, SFDI)."""
    cert_path = directory / f"{name}.pem"
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    lfdi = lfdi_from_certificate(cert.public_bytes(serialization.Encoding.DER))
    return ClientIdentity(
        name=name,
        role=role,
        cert=cert_path,
        key=directory / f"{name}.key",
        lfdi=lfdi,
        sfdi=sfdi_from_lfdi(lfdi),
    )


def ensure_test_pki(
    directory: str | Path,
    *,
    hosts: tuple[str, ...] = ("localhost", "127.0.0.1", "::1"),
    clients: tuple[tuple[str, str], ...] = DEFAULT_CLIENTS,
) -> tuple[TlsFiles, list[ClientIdentity]]:
    """Create (once) a test CA, a server certificate and client certificates in ``directory``.

    Existing files are kept, so restarting the server keeps every client's identity; a client
    listed in ``clients`` but missing is added. ``clients.json`` lists every client's name, role,
    files, LFDI and SFDI.
    """
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "ca.pem").exists() or not (folder / "ca.key").exists():
        _make_ca(folder)
    if not (folder / "server.pem").exists() or not (folder / "server.key").exists():
        issue_certificate(folder, "server", server_hosts=hosts)
    manifest_path = folder / "clients.json"
    known: dict[str, str] = {}
    if manifest_path.exists():
        known = {c["name"]: c["role"] for c in json.loads(manifest_path.read_text())}
    for name, role in clients:
        known.setdefault(name, role)
    identities = []
    for name, role in known.items():
        if not (folder / f"{name}.pem").exists():
            issue_certificate(folder, name)
        identities.append(client_identity(folder, name, role))
    manifest_path.write_text(
        json.dumps(
            [
                {
                    "name": c.name,
                    "role": c.role,
                    "cert": c.cert.name,
                    "key": c.key.name,
                    "lfdi": c.lfdi,
                    "sfdi": c.sfdi,
                }
                for c in identities
            ],
            indent=2,
        )
        + "\n"
    )
    files = TlsFiles(folder / "server.pem", folder / "server.key", folder / "ca.pem")
    return files, identities
