"""Client certificate verification against a set of CAs, done in the application.

Go's apiserver requests a client certificate without verifying it in the handshake and checks
it per authenticator (client CA for users, front-proxy CA for request headers). Python's `ssl`
cannot do that: with `CERT_OPTIONAL` it verifies against *all* loaded CAs at once, so a
certificate from the client CA would pass for the front proxy. This module re-checks which CA
issued the peer certificate, its validity period and its extended key usage.

Limitation: Python 3.11 exposes only the leaf certificate of the peer, so the leaf must be issued
*directly* by one of the configured CAs; intermediate CAs must themselves be listed as CAs
(the handshake has already checked the full chain against the trust store).
"""

import contextlib
import datetime
import hashlib
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "CertificateRejected",
    "ClientCertVerifier",
    "VerifiedCertificate",
    "certificate_identifier",
    "common_name",
    "credential_id",
    "organizations",
]


class CertificateRejected(Exception):
    """The peer certificate is not acceptable; `reason` says why (safe to log)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class VerifiedCertificate:
    """A leaf certificate and the configured CA that issued it, with the subject names the
    authenticators read (parsed once, not per request)."""

    certificate: x509.Certificate
    issuer: x509.Certificate
    common_name: str = field(init=False)
    organizations: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "common_name", common_name(self.certificate))
        object.__setattr__(self, "organizations", tuple(organizations(self.certificate)))


@dataclass(frozen=True, slots=True)
class _Verified:
    """A cached successful verification: valid while the CAs are the same and the time is
    inside both certificates' validity periods."""

    cas: tuple[x509.Certificate, ...]
    result: VerifiedCertificate
    not_before: datetime.datetime
    not_after: datetime.datetime


def _attributes(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> list[str]:
    values: list[str] = []
    for attribute in cert.subject.get_attributes_for_oid(oid):
        value = attribute.value
        values.append(value if isinstance(value, str) else value.decode("utf-8", "replace"))
    return values


def common_name(cert: x509.Certificate) -> str:
    """The subject CN (Go's `pkix.Name.CommonName`: the last CN attribute), or ""."""
    names = _attributes(cert, NameOID.COMMON_NAME)
    return names[-1] if names else ""


def organizations(cert: x509.Certificate) -> list[str]:
    """The subject O values, in order."""
    return _attributes(cert, NameOID.ORGANIZATION_NAME)


def credential_id(cert: x509.Certificate) -> str:
    """`X509SHA256=<hex of the DER's SHA-256>`, k8s's credential id of a client certificate."""
    der = cert.public_bytes(Encoding.DER)
    return "X509SHA256=" + hashlib.sha256(der).hexdigest()


def _hex_or_none(data: bytes) -> str:
    return ":".join(f"{b:02X}" for b in data) if data else "<none>"


def certificate_identifier(cert: x509.Certificate) -> str:
    """k8s's `certificateIdentifier`: `SN=<serial>, SKID=<hex>, AKID=<hex>` for error messages."""
    skid = b""
    akid = b""
    with contextlib.suppress(x509.ExtensionNotFound):
        skid = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    try:
        aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
        akid = aki.key_identifier or b""
    except x509.ExtensionNotFound:
        pass
    return f"SN={cert.serial_number}, SKID={_hex_or_none(skid)}, AKID={_hex_or_none(akid)}"


def _go_time(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _check_validity(cert: x509.Certificate, now: datetime.datetime) -> None:
    if now < cert.not_valid_before_utc:
        raise CertificateRejected(
            "x509: certificate has expired or is not yet valid: current time "
            f"{_go_time(now)} is before {_go_time(cert.not_valid_before_utc)}"
        )
    if now > cert.not_valid_after_utc:
        raise CertificateRejected(
            "x509: certificate has expired or is not yet valid: current time "
            f"{_go_time(now)} is after {_go_time(cert.not_valid_after_utc)}"
        )


def _allows_client_auth(cert: x509.Certificate) -> bool:
    # Go's x509.Verify: no EKU extension means any usage; anyExtendedKeyUsage matches too.
    try:
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return True
    allowed = (ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE)
    return any(usage in allowed for usage in usages)


def _issued_by(leaf: x509.Certificate, ca: x509.Certificate) -> bool:
    if leaf.issuer != ca.subject:
        return False
    try:
        leaf.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


class ClientCertVerifier:
    """Checks that a client certificate was issued directly by one of the current CAs, is valid
    now and may be used for client authentication (Go: `KeyUsages: [ClientAuth]`).

    `ca_bundles` is called on every verification so that CA rotation takes effect at once.
    Successful verifications are remembered by the certificate's DER bytes: the aggregator
    presents the same front-proxy certificate on every request, and checking a signature
    costs more than the rest of a request. An entry is used only while the CAs are unchanged
    and the time is inside both certificates' validity periods, so the outcome is the same
    as verifying again. Failures are not cached."""

    CACHE_SIZE = 64  # distinct client certificates; a cluster has a handful

    def __init__(
        self,
        ca_bundles: Callable[[], Sequence[x509.Certificate]],
        *,
        clock: Callable[[], datetime.datetime] | None = None,
    ) -> None:
        self._ca_bundles = ca_bundles
        self._clock = clock or (lambda: datetime.datetime.now(datetime.UTC))
        self._verified: OrderedDict[bytes, _Verified] = OrderedDict()

    def has_cas(self) -> bool:
        return bool(self._ca_bundles())

    def verify(self, der: bytes) -> VerifiedCertificate:
        """Verify the peer certificate `der`; raises CertificateRejected."""
        cas = tuple(self._ca_bundles())
        cached = self._verified.get(der)
        if (
            cached is not None
            and cached.cas == cas
            and cached.not_before <= self._clock() <= cached.not_after
        ):
            return cached.result
        try:
            leaf = x509.load_der_x509_certificate(der)
        except ValueError as exc:
            raise CertificateRejected(f"x509: malformed certificate: {exc}") from None
        result = self._verify(leaf, cas)
        issuer = result.issuer
        self._verified[der] = _Verified(
            cas,
            result,
            max(leaf.not_valid_before_utc, issuer.not_valid_before_utc),
            min(leaf.not_valid_after_utc, issuer.not_valid_after_utc),
        )
        self._verified.move_to_end(der)
        while len(self._verified) > self.CACHE_SIZE:
            self._verified.popitem(last=False)
        return result

    def verify_certificate(self, leaf: x509.Certificate) -> VerifiedCertificate:
        return self._verify(leaf, self._ca_bundles())

    def _verify(
        self, leaf: x509.Certificate, cas: Sequence[x509.Certificate]
    ) -> VerifiedCertificate:
        now = self._clock()
        issuers = [ca for ca in cas if _issued_by(leaf, ca)]
        if not issuers:
            raise CertificateRejected("x509: certificate signed by unknown authority")
        _check_validity(leaf, now)
        if not _allows_client_auth(leaf):
            raise CertificateRejected("x509: certificate specifies an incompatible key usage")
        last_error: CertificateRejected | None = None
        for ca in issuers:
            # The CA must be valid now and must not restrict its EKUs away from client auth
            # (Go checks key usages and validity along the whole chain).
            try:
                _check_validity(ca, now)
            except CertificateRejected as exc:
                last_error = exc
                continue
            if not _allows_client_auth(ca):
                last_error = CertificateRejected(
                    "x509: certificate specifies an incompatible key usage"
                )
                continue
            return VerifiedCertificate(leaf, ca)
        assert last_error is not None
        raise last_error
