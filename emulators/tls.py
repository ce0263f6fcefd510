"""Throw-away TLS material for the emulators: a private CA and one server certificate.

    files = make_ca_and_server_cert(tmp_dir)            # ca.pem, server.pem, server.key
    PrismServer(pc, ssl_context=prism_ssl_context(files))          # HTTPS
    CloudForetEmulator(db, server_credentials=grpc_server_credentials(files))  # gRPC TLS

Clients verify with ``files.ca_pem`` (``requests.get(..., verify=files.ca_pem)``,
``grpc.ssl_channel_credentials(root_certificates=open(files.ca_pem, 'rb').read())``).
The server certificate carries SANs for every name in ``hostnames`` (IP addresses
as iPAddress entries), so hostname verification works for 127.0.0.1 and localhost.
"""
from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_FILE, CERT_FILE, KEY_FILE = "ca.pem", "server.pem", "server.key"


@dataclass(frozen=True)
class TlsFiles:
    ca_pem: str    # the CA certificate clients must trust
    cert_pem: str  # the server certificate (signed by the CA)
    key_pem: str   # the server's private key (mode 0600)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "emulators"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _san(hostnames: Iterable[str]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for host in hostnames:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            entries.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(entries)


def make_ca_and_server_cert(directory: str | os.PathLike, hostnames: Iterable[str] = ("127.0.0.1", "localhost"),
                            days: int = 30) -> TlsFiles:
    """Write a fresh CA and a server certificate/key for ``hostnames`` into ``directory``."""
    hostnames = list(hostnames)
    if not hostnames:
        raise ValueError("at least one hostname is needed")
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    not_before, not_after = now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=days)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("emulator test CA")
    ca_cert = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(not_before).not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder().subject_name(_name(hostnames[0])).issuer_name(ca_name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(not_before).not_valid_after(not_after)
        .add_extension(_san(hostnames), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=False,
                                     content_commitment=False, data_encipherment=False,
                                     key_agreement=False, key_cert_sign=False, crl_sign=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    files = TlsFiles(str(out / CA_FILE), str(out / CERT_FILE), str(out / KEY_FILE))
    Path(files.ca_pem).write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    Path(files.cert_pem).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_bytes = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption())
    fd = os.open(files.key_pem, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key_bytes)
    os.chmod(files.key_pem, 0o600)
    return files


def prism_ssl_context(files: TlsFiles) -> ssl.SSLContext:
    """Server-side context for ``PrismServer(ssl_context=...)`` (TLS 1.2+)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(files.cert_pem, files.key_pem)
    return ctx


def grpc_server_credentials(files: TlsFiles) -> Any:
    """``grpc.ServerCredentials`` for ``CloudForetEmulator(server_credentials=...)``."""
    import grpc  # only the CloudForet side needs grpc

    return grpc.ssl_server_credentials(
        [(Path(files.key_pem).read_bytes(), Path(files.cert_pem).read_bytes())])


def grpc_channel_credentials(ca_pem: str) -> Any:
    """Client credentials trusting only ``ca_pem`` (for tests and scripts)."""
    import grpc

    return grpc.ssl_channel_credentials(root_certificates=Path(ca_pem).read_bytes())
