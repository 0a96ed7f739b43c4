"""A small test PKI: certificate authorities, serving and client certificates.

EC P-256 keys keep issuance fast (milliseconds), so every test can have its own CAs. Client
certificates look like kubeadm's (CN = user, O = groups, EKU clientAuth, no SAN); the keyword
arguments produce the broken variants negative tests need: expired or not-yet-valid
certificates and certificates whose EKU is serverAuth only.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["CertificateAuthority", "KeyPair"]

# Backdate validity a little so that clock skew between test processes cannot matter.
_BACKDATE = datetime.timedelta(minutes=5)
_DEFAULT_LIFETIME = datetime.timedelta(days=1)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _san_entry(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


@dataclass(frozen=True)
class KeyPair:
    """A PEM certificate and its PEM (PKCS#8, unencrypted) private key."""

    cert_pem: bytes
    key_pem: bytes

    @property
    def certificate(self) -> x509.Certificate:
        """The parsed certificate."""
        return x509.load_pem_x509_certificate(self.cert_pem)

    def write(self, directory: Path | str, stem: str) -> tuple[Path, Path]:
        """Write `<stem>.crt` and `<stem>.key` into `directory`; their paths."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        cert_path = directory / f"{stem}.crt"
        key_path = directory / f"{stem}.key"
        cert_path.write_bytes(self.cert_pem)
        key_path.write_bytes(self.key_pem)
        key_path.chmod(0o600)
        return cert_path, key_path


class CertificateAuthority:
    """A self-signed CA (or, via `issue_intermediate`, an intermediate) that issues leaves."""

    def __init__(
        self,
        name: str,
        *,
        not_before: datetime.datetime | None = None,
        not_after: datetime.datetime | None = None,
        _issuer: CertificateAuthority | None = None,
    ) -> None:
        self.name = name
        self._key = _new_key()
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        issuer_name = _issuer.certificate.subject if _issuer is not None else subject
        signing_key = _issuer._key if _issuer is not None else self._key
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer_name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before or _now() - _BACKDATE)
            .not_valid_after(not_after or _now() + _DEFAULT_LIFETIME)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
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
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()), critical=False
            )
        )
        if _issuer is not None:
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(_issuer._key.public_key()),
                critical=False,
            )
        self.certificate: x509.Certificate = builder.sign(signing_key, hashes.SHA256())
        self.cert_pem = self.certificate.public_bytes(serialization.Encoding.PEM)
        self.key_pem = _key_pem(self._key)

    @property
    def key_pair(self) -> KeyPair:
        """The CA's own certificate and key."""
        return KeyPair(self.cert_pem, self.key_pem)

    def write(self, directory: Path | str, stem: str | None = None) -> Path:
        """Write the CA certificate (only) as `<stem>.crt`; its path."""
        path = Path(directory) / f"{stem or self.name}.crt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.cert_pem)
        return path

    def issue_intermediate(self, name: str) -> CertificateAuthority:
        """A CA signed by this one (for chain tests); send `leaf + intermediate` as the chain."""
        return CertificateAuthority(name, _issuer=self)

    def _issue(
        self,
        subject: x509.Name,
        *,
        sans: Iterable[str],
        eku: list[x509.ObjectIdentifier],
        not_before: datetime.datetime | None,
        not_after: datetime.datetime | None,
    ) -> KeyPair:
        key = _new_key()
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before or _now() - _BACKDATE)
            .not_valid_after(not_after or _now() + _DEFAULT_LIFETIME)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                critical=False,
            )
        )
        if eku:
            builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
        names = [_san_entry(name) for name in sans]
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert = builder.sign(self._key, hashes.SHA256())
        return KeyPair(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))

    def issue_server(
        self,
        names: Iterable[str] = ("localhost", "127.0.0.1"),
        *,
        not_before: datetime.datetime | None = None,
        not_after: datetime.datetime | None = None,
        client_auth: bool = False,
    ) -> KeyPair:
        """A serving certificate (EKU serverAuth) for DNS names and IP addresses `names`.

        The CN is the first name; verification uses only the SANs, as Go and OpenSSL do.
        """
        names = list(names)
        cn = names[0] if names else "server"
        eku = [ExtendedKeyUsageOID.SERVER_AUTH]
        if client_auth:
            eku.append(ExtendedKeyUsageOID.CLIENT_AUTH)
        return self._issue(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]),
            sans=names,
            eku=eku,
            not_before=not_before,
            not_after=not_after,
        )

    def issue_client(
        self,
        cn: str,
        orgs: Iterable[str] = (),
        *,
        not_before: datetime.datetime | None = None,
        not_after: datetime.datetime | None = None,
        client_auth: bool = True,
        server_auth: bool | None = None,
    ) -> KeyPair:
        """A client certificate: CN = user, one O per group, no SAN (like kubeadm's).

        `client_auth=False` gives a serverAuth-only certificate; with `server_auth=False` as
        well there is no EKU extension at all (which Go treats as "any usage"). A `not_after`
        in the past gives an expired certificate, a `not_before` in the future one not yet valid.
        """
        if server_auth is None:
            server_auth = not client_auth
        attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in orgs]
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
        eku: list[x509.ObjectIdentifier] = []
        if client_auth:
            eku.append(ExtendedKeyUsageOID.CLIENT_AUTH)
        if server_auth:
            eku.append(ExtendedKeyUsageOID.SERVER_AUTH)
        return self._issue(
            x509.Name(attrs),
            sans=(),
            eku=eku,
            not_before=not_before,
            not_after=not_after,
        )

    def issue_expired_client(self, cn: str, orgs: Iterable[str] = ()) -> KeyPair:
        """A client certificate that expired an hour ago."""
        now = _now()
        return self.issue_client(
            cn,
            orgs,
            not_before=now - datetime.timedelta(days=2),
            not_after=now - datetime.timedelta(hours=1),
        )
