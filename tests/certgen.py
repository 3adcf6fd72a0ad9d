"""Real X.509 certificates for the certificate tests, made with ``cryptography``.

Each call makes a fresh key; EC P-256 unless a test needs another key type. Names,
validity, SANs, AIA and the signing hash are whatever the test asks for, so each test
states its own oracle (the certificate it built).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
"""Validity is set around the real time: OpenSSL verifies against the real clock."""


def name(cn: str, org: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


@dataclass(frozen=True)
class Issued:
    cert: x509.Certificate
    key: Any

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        return bytes(
            self.key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )


def issue(
    cn: str = "dns.test",
    *,
    issuer: Issued | None = None,
    key: Any = None,
    dns: tuple[str, ...] = ("dns.test",),
    ips: tuple[str, ...] = (),
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    ca: bool = False,
    aia: tuple[str, ...] = (),
    ocsp: tuple[str, ...] = (),
    hash_algorithm: Any = None,
    subject: x509.Name | None = None,
    san: bool = True,
) -> Issued:
    """A certificate for ``cn``; self-signed unless ``issuer`` is given."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    subject = subject or name(cn)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or NOW - dt.timedelta(days=30))
        .not_valid_after(not_after or NOW + dt.timedelta(days=90))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    if san and names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    if aia or ocsp:
        descriptions = [
            x509.AccessDescription(
                AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(url)
            )
            for url in ocsp
        ]
        descriptions += [
            x509.AccessDescription(
                AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier(url)
            )
            for url in aia
        ]
        builder = builder.add_extension(
            x509.AuthorityInformationAccess(descriptions), critical=False
        )
    signer = issuer.key if issuer else key
    if isinstance(signer, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey):
        algorithm = None
    else:
        algorithm = hash_algorithm or hashes.SHA256()
    return Issued(builder.sign(signer, algorithm), key)


def ca(cn: str = "Test Root CA", issuer: Issued | None = None) -> Issued:
    return issue(cn, issuer=issuer, dns=(), ca=True)


def rsa_key(bits: int) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def write_chain(directory: Path, leaf: Issued, *chain: Issued) -> tuple[Path, Path]:
    cert_path, key_path = directory / "chain.pem", directory / "key.pem"
    cert_path.write_bytes(leaf.pem() + b"".join(c.pem() for c in chain))
    key_path.write_bytes(leaf.key_pem())
    return cert_path, key_path


def sha1_signed(directory: Path, cn: str = "sha1.test") -> Issued:
    """A self-signed certificate signed with SHA-1, which ``cryptography`` refuses to make:
    the openssl command line still can."""
    import subprocess

    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    key_path, cert_path = directory / f"{cn}.key", directory / f"{cn}.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", str(key_path), "-out", str(cert_path), "-subj", f"/CN={cn}",
         "-addext", f"subjectAltName=DNS:{cn}", "-days", "30", "-sha1"],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    return Issued(cert, load_pem_private_key(key_path.read_bytes(), None))


def sha1_leaf(
    directory: Path, issuer: Issued, cn: str = "dns.test", *, rsa_bits: int | None = None
) -> Issued:
    """A leaf for ``cn`` that ``issuer`` signed with SHA-1 (made by the openssl command);
    its key is EC P-256, or RSA of ``rsa_bits``."""
    return openssl_issued(directory, issuer, cn, digest="sha1", rsa_bits=rsa_bits)


def openssl_issued(
    directory: Path,
    issuer: Issued,
    cn: str = "dns.test",
    *,
    digest: str,
    rsa_bits: int | None = None,
    ca: bool = False,
) -> Issued:
    """A certificate for ``cn`` that ``issuer`` signed with ``digest`` ("sha1", "md5": what
    ``cryptography`` refuses to make), by the openssl command; a leaf for ``cn``, or a CA.
    Its key is EC P-256, or RSA of ``rsa_bits``. Files go in a subdirectory of
    ``directory`` named after ``cn`` and ``digest``, so several may share ``directory``."""
    import subprocess

    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    directory = directory / f"{cn}-{digest}"
    directory.mkdir(exist_ok=True)
    ca_cert, ca_key = directory / "issuer.pem", directory / "issuer.key"
    ca_cert.write_bytes(issuer.pem())
    ca_key.write_bytes(issuer.key_pem())
    key_path, csr, out = directory / "cert.key", directory / "cert.csr", directory / "cert.pem"
    ext = directory / "cert.ext"
    ext.write_text("basicConstraints=critical,CA:TRUE\n" if ca else f"subjectAltName=DNS:{cn}\n")
    subprocess.run(
        ["openssl", "req", "-new",
         *(["-newkey", f"rsa:{rsa_bits}"] if rsa_bits else
           ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]),
         "-nodes", "-keyout", str(key_path), "-out", str(csr), "-subj", f"/CN={cn}"],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    subprocess.run(
        ["openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca_cert), "-CAkey", str(ca_key),
         "-CAcreateserial", "-out", str(out), "-days", "30", f"-{digest}", "-extfile", str(ext)],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    cert = x509.load_pem_x509_certificate(out.read_bytes())
    return Issued(cert, load_pem_private_key(key_path.read_bytes(), None))
