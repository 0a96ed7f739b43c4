"""Serving certificates and the TLS context of the HTTPS listener.

Ports what k8s.io/apiserver does for `--cert-dir`, `--tls-cert-file`, `--tls-private-key-file`,
`--tls-min-version`, `--tls-cipher-suites` and `--tls-sni-cert-key`: a generated self-signed
certificate when no files are given (`MaybeDefaultWithSelfSignedCerts`), Go cipher-suite and
version names (component-base `cli/flag`), certificates picked by SNI name (adapter/server/sni.py
has the rules), and reloading of every certificate when its files change
(`DynamicServingCertificateController`).
"""

import asyncio
import contextlib
import datetime
import ipaddress
import logging
import os
import secrets
import ssl
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, NoReturn

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from adapter.server.sni import (
    SNI_FLAG,
    HostnameMatcher,
    NamedCertKey,
    build_name_table,
    certificate_names,
    go_quote,
    lookup,
    parse_named_cert_key,
)

__all__ = [
    "GO_CIPHER_SUITES",
    "GO_INSECURE_CIPHER_SUITES",
    "GO_TLS13_CIPHER_SUITES",
    "SELF_SIGNED_PAIR_NAME",
    "ServingCertConfig",
    "ServingTLS",
    "TLSConfigError",
    "ensure_serving_cert",
    "generate_self_signed_cert",
    "openssl_cipher_names",
    "tls_min_version",
]

log = logging.getLogger(__name__)

# Go's tls.CipherSuites() (TLS 1.0-1.2 part) mapped to OpenSSL names, plus the two legacy
# CHACHA20 names component-base still accepts. Checked with `openssl ciphers -stdname`.
GO_CIPHER_SUITES: dict[str, str] = {
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305": "ECDHE-ECDSA-CHACHA20-POLY1305",
}

# Go's tls.InsecureCipherSuites(), including the RSA key-exchange suites that recent Go releases
# moved there. Accepted as Go accepts them, with the warning kube-apiserver logs.
GO_INSECURE_CIPHER_SUITES: dict[str, str] = {
    "TLS_RSA_WITH_RC4_128_SHA": "RC4-SHA",
    "TLS_RSA_WITH_3DES_EDE_CBC_SHA": "DES-CBC3-SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA256": "AES128-SHA256",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA": "ECDHE-ECDSA-RC4-SHA",
    "TLS_ECDHE_RSA_WITH_RC4_128_SHA": "ECDHE-RSA-RC4-SHA",
    "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA": "ECDHE-RSA-DES-CBC3-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256": "ECDHE-ECDSA-AES128-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256": "ECDHE-RSA-AES128-SHA256",
}

# Go accepts these names but ignores them: TLS 1.3 suites are not configurable in Go.
GO_TLS13_CIPHER_SUITES: frozenset[str] = frozenset(
    {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"}
)

# OpenSSL name -> Go name, for messages; the current Go names win over the legacy aliases.
_GO_NAMES: dict[str, str] = {
    openssl: go
    for go, openssl in reversed([*GO_CIPHER_SUITES.items(), *GO_INSECURE_CIPHER_SUITES.items()])
}

_MIN_VERSIONS: dict[str, ssl.TLSVersion] = {
    "": ssl.TLSVersion.TLSv1_2,
    "VersionTLS12": ssl.TLSVersion.TLSv1_2,
    "VersionTLS13": ssl.TLSVersion.TLSv1_3,
}
_REFUSED_VERSIONS = frozenset({"VersionTLS10", "VersionTLS11"})

SELF_SIGNED_PAIR_NAME = "apiserver"
_VALIDITY = datetime.timedelta(days=365)
_BACKDATE = datetime.timedelta(hours=1)  # Go backdates by an hour to absorb clock skew
# Reopening /proc/self/fd/N reads the very inode we opened and fstat'ed, so the validation load
# and the live load see the same bytes even if the files are swapped in between.
_PROC_FD = Path("/proc/self/fd")


class TLSConfigError(ValueError):
    """A serving certificate, key, CA file or TLS flag that cannot be used."""


@dataclass(frozen=True, slots=True)
class ServingCertConfig:
    """The secure-serving flags that shape the listener's TLS."""

    cert_dir: str = "apiserver.local.config/certificates"
    tls_cert_file: str = ""
    tls_private_key_file: str = ""
    extra_sans: tuple[str, ...] = ()
    min_version: str = ""
    cipher_suites: tuple[str, ...] = ()
    # --tls-sni-cert-key values as given: "cert,key" or "cert,key:name1,name2".
    sni_cert_keys: tuple[str, ...] = ()
    # --bind-address: when it is one IP, clients without SNI get the SNI certificate claiming it.
    bind_address: str = ""


def tls_min_version(name: str) -> ssl.TLSVersion:
    """Map a `--tls-min-version` value to a TLS version; "" means TLS 1.2."""
    if name in _REFUSED_VERSIONS:
        raise TLSConfigError(
            f"--tls-min-version={name} is not supported: this adapter never accepts TLS below "
            "1.2; use VersionTLS12 or VersionTLS13"
        )
    try:
        return _MIN_VERSIONS[name]
    except KeyError:
        raise TLSConfigError(
            f'unknown tls version "{name}"; valid values: VersionTLS12, VersionTLS13'
        ) from None


def openssl_cipher_names(go_names: Iterable[str]) -> tuple[str, ...]:
    """Map `--tls-cipher-suites` Go names to OpenSSL names of the TLS 1.2 suites, in order.

    TLS 1.3 names are accepted and dropped (Go ignores them too); duplicates are dropped.
    """
    result: list[str] = []
    for name in go_names:
        if name in GO_TLS13_CIPHER_SUITES:
            continue
        openssl_name = GO_CIPHER_SUITES.get(name) or GO_INSECURE_CIPHER_SUITES.get(name)
        if openssl_name is None:
            valid = sorted({*GO_CIPHER_SUITES, *GO_INSECURE_CIPHER_SUITES, *GO_TLS13_CIPHER_SUITES})
            raise TLSConfigError(
                f"cipher suite {name} not supported or doesn't exist; valid values: "
                + ", ".join(valid)
            )
        if openssl_name not in result:
            result.append(openssl_name)
    return tuple(result)


# --- self-signed certificate ------------------------------------------------------------------


def _subject_alt_names(host: str, extra_sans: Iterable[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for text in (host, "127.0.0.1", *extra_sans):
        text = text.strip()
        if not text:
            continue
        general: x509.GeneralName
        try:
            general = x509.IPAddress(ipaddress.ip_address(text))
        except ValueError:
            try:
                general = x509.DNSName(text)
            except ValueError as err:
                raise TLSConfigError(f"invalid subject alternative name {text!r}: {err}") from None
        if general not in names:
            names.append(general)
    return names


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def generate_self_signed_cert(
    host: str = "localhost", extra_sans: Iterable[str] = ()
) -> tuple[bytes, bytes]:
    """Return (certificate PEM, private key PEM) like client-go's GenerateSelfSignedCertKey.

    As in Go, a throwaway CA "<host>-ca@<unix time>" signs the leaf "<host>@<unix time>", and
    the certificate file holds the leaf followed by that CA, so a client can trust the file as
    a CA bundle. Unlike Go, keys are ECDSA P-256 (fast) and serials are random (Go uses 1 and 2,
    which repeats issuer and serial across restarts).
    """
    stamp = int(time.time())
    not_before = datetime.datetime.now(datetime.UTC) - _BACKDATE
    not_after = not_before + _VALIDITY

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{host}-ca@{stamp}")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{host}@{stamp}")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName(_subject_alt_names(host, extra_sans)), critical=False
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    cert_pem = leaf.public_bytes(serialization.Encoding.PEM) + ca_cert.public_bytes(
        serialization.Encoding.PEM
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert_pem, key_pem


def _write_atomically(path: Path, data: bytes, mode: int) -> None:
    """Write via a temporary file and rename, so a crash never leaves a half-written file."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        try:
            os.fchmod(fd, mode)  # the umask must not widen or narrow the mode we promise
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as err:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise TLSConfigError(f"cannot write {path}: {err.strerror or err}") from None


def _check_readable(path: Path, what: str) -> None:
    try:
        with path.open("rb"):
            pass
    except OSError as err:
        raise TLSConfigError(f"cannot read {what} {path}: {err.strerror or err}") from None


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError as err:
        raise TLSConfigError(f"cannot access {path}: {err.strerror or err}") from None


def _warn_if_missing_sans(cert_path: Path, extra_sans: Sequence[str]) -> None:
    """A reused certificate keeps its SANs; say so if --cert-dir holds one without new SANs."""
    if not extra_sans:
        return
    try:
        leaf = x509.load_pem_x509_certificates(cert_path.read_bytes())[0]
        present = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, IndexError, x509.ExtensionNotFound):
        return  # ServingTLS reports unusable files; this is only a hint
    missing = [name for name in _subject_alt_names("localhost", extra_sans) if name not in present]
    if missing:
        log.warning(
            "Reusing %s, which lacks the requested names %s; delete it to regenerate",
            cert_path,
            ", ".join(str(name.value) for name in missing),
        )


def ensure_serving_cert(config: ServingCertConfig) -> tuple[Path, Path]:
    """Return the (certificate, key) paths to serve, generating a self-signed pair if needed.

    Mirrors `SecureServingOptions.MaybeDefaultWithSelfSignedCerts`: explicit files win (both are
    required); otherwise `<cert-dir>/apiserver.crt` and `apiserver.key` are reused when both
    exist, and generated (key mode 0600, directory 0700) when either is missing.
    """
    if config.tls_cert_file or config.tls_private_key_file:
        if not config.tls_cert_file:
            raise TLSConfigError("--tls-private-key-file is set without --tls-cert-file")
        if not config.tls_private_key_file:
            raise TLSConfigError("--tls-cert-file is set without --tls-private-key-file")
        cert_path, key_path = Path(config.tls_cert_file), Path(config.tls_private_key_file)
        _check_readable(cert_path, "serving certificate")
        _check_readable(key_path, "serving key")
        return cert_path, key_path

    cert_dir = Path(config.cert_dir)
    cert_path = cert_dir / f"{SELF_SIGNED_PAIR_NAME}.crt"
    key_path = cert_dir / f"{SELF_SIGNED_PAIR_NAME}.key"
    if _exists(cert_path) and _exists(key_path):
        _check_readable(cert_path, "serving certificate")
        _check_readable(key_path, "serving key")
        _warn_if_missing_sans(cert_path, config.extra_sans)
        return cert_path, key_path

    try:
        cert_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as err:
        raise TLSConfigError(
            f"cannot create certificate directory {cert_dir}: {err.strerror or err}"
        ) from None
    cert_pem, key_pem = generate_self_signed_cert("localhost", config.extra_sans)
    # Key first: if we die between the two writes, the missing certificate triggers a fresh pair.
    _write_atomically(key_path, key_pem, 0o600)
    _write_atomically(cert_path, cert_pem, 0o644)
    log.info("Generated self-signed cert (%s, %s)", cert_path, key_path)
    return cert_path, key_path


# --- the listener's context -------------------------------------------------------------------

_Signature = tuple[tuple[int, int, int, int], tuple[int, int, int, int]]


def _stat_key(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _fd_path(handle: IO[bytes], path: Path) -> str:
    if _PROC_FD.is_dir():
        return str(_PROC_FD / str(handle.fileno()))
    return str(path)  # no procfs: fall back to the path, accepting a tiny swap race


class _EncryptedKeyError(Exception):
    pass


def _refuse_password() -> NoReturn:
    # Without a callback OpenSSL would prompt on the terminal for an encrypted key.
    raise _EncryptedKeyError


def _cn(name: x509.Name) -> str:
    attrs = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    value = attrs[0].value if attrs else ""
    return value if isinstance(value, str) else value.decode(errors="replace")


def _san_values(cert: x509.Certificate) -> tuple[list[str], list[str]]:
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], []
    return sans.get_values_for_type(x509.DNSName), [
        str(ip) for ip in sans.get_values_for_type(x509.IPAddress)
    ]


def _key_description(cert: x509.Certificate) -> str:
    key = cert.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"ECDSA {key.curve.name}"
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA {key.key_size}"
    return type(key).__name__


def _describe(leaf: x509.Certificate) -> str:
    dns_names, ip_addresses = _san_values(leaf)
    return '"{}" [{}] issuer="{}" serial={:x} validUntil={}'.format(
        _cn(leaf.subject),
        ",".join([*dns_names, *ip_addresses]),
        _cn(leaf.issuer),
        leaf.serial_number,
        leaf.not_valid_after_utc.isoformat(),
    )


class _CertKeyFiles:
    """A certificate file and its key file: read consistently, and polled for changes.

    `role` names the pair in messages ("serving", "SNI"); `what` in reload logs.
    """

    def __init__(self, cert_path: Path, key_path: Path, role: str, what: str) -> None:
        self.cert_path = cert_path
        self.key_path = key_path
        self.role = role
        self.what = what
        # The files' identity when last loaded; None forces a load on the next poll.
        self.signature: _Signature | None = None
        self._last_stat_error = ""

    def load(self, context: ssl.SSLContext) -> x509.Certificate:
        """Load the pair into a context not yet serving (a failed load_cert_chain can leave
        it with a new certificate and no key), from the same open files; the leaf."""
        try:
            cert_file = self.cert_path.open("rb")
        except OSError as err:
            raise TLSConfigError(
                f"cannot read {self.role} certificate {self.cert_path}: {err.strerror or err}"
            ) from None
        with cert_file:
            try:
                key_file = self.key_path.open("rb")
            except OSError as err:
                raise TLSConfigError(
                    f"cannot read {self.role} key {self.key_path}: {err.strerror or err}"
                ) from None
            with key_file:
                signature = (
                    _stat_key(os.fstat(cert_file.fileno())),
                    _stat_key(os.fstat(key_file.fileno())),
                )
                try:
                    leaf = x509.load_pem_x509_certificates(cert_file.read())[0]
                except (ValueError, IndexError):
                    raise TLSConfigError(
                        f"{self.role} certificate {self.cert_path} holds no PEM certificate"
                    ) from None
                cert_name = _fd_path(cert_file, self.cert_path)
                key_name = _fd_path(key_file, self.key_path)
                self._load_into(context, cert_name, key_name)
        self.signature = signature
        return leaf

    def _load_into(self, context: ssl.SSLContext, cert_name: str, key_name: str) -> None:
        what = f"{self.role} certificate {self.cert_path} and key {self.key_path}"
        try:
            context.load_cert_chain(cert_name, key_name, password=_refuse_password)
        except _EncryptedKeyError:
            raise TLSConfigError(f"{self.role} key {self.key_path} is encrypted") from None
        except ssl.SSLError as err:
            if "KEY_VALUES_MISMATCH" in str(err):
                raise TLSConfigError(f"{what} do not match") from None
            raise TLSConfigError(f"cannot load {what}: {err}") from None
        except OSError as err:
            raise TLSConfigError(f"cannot load {what}: {err.strerror or err}") from None

    def changed(self) -> _Signature | None:
        """The files' signature if it differs from the loaded one, else None.

        A file that cannot be stat'ed (mid-rotation, say) counts as unchanged, logged once.
        """
        try:
            signature = (_stat_key(self.cert_path.stat()), _stat_key(self.key_path.stat()))
        except OSError as err:
            message = f"{err.filename}: {err.strerror or err}"
            if message != self._last_stat_error:
                log.warning("Keeping the current %s: cannot stat %s", self.what, message)
                self._last_stat_error = message
            return None
        self._last_stat_error = ""
        return None if signature == self.signature else signature

    def failed(self, signature: _Signature, err: TLSConfigError) -> None:
        """Log a reload that failed; the next poll retries only after the files change again."""
        log.error("Keeping the current %s: %s", self.what, err)
        if self.signature is not None:
            self.signature = signature  # log once per change, not once per poll


@dataclass(slots=True)
class _NamedCertificate:
    """One --tls-sni-cert-key pair, served from its own context."""

    flag: NamedCertKey
    files: _CertKeyFiles
    context: ssl.SSLContext
    leaf: x509.Certificate


@dataclass(frozen=True, slots=True)
class _Selection:
    """Which context a handshake switches to; rebuilt whenever a certificate is (re)loaded,
    swapped whole, so the SNI callback reads one consistent snapshot."""

    by_name: dict[str, ssl.SSLContext]
    # For clients without SNI: the certificate claiming the listener's IP, else the one with
    # an empty pattern; None keeps the default certificate.
    without_sni: ssl.SSLContext | None
    # When no name matches: the first certificate valid for the name, the default first
    # (crypto/tls tries Certificates in order); a None context means the default.
    valid_for: tuple[tuple[HostnameMatcher, ssl.SSLContext | None], ...]

    def for_name(self, server_name: str) -> ssl.SSLContext | None:
        context = lookup(self.by_name, server_name)
        if context is not None:
            return context
        for matches, candidate in self.valid_for:
            if matches(server_name):
                return candidate
        return None


def _local_ip_name(bind_address: str) -> str:
    """The listener's IP as Go prints a connection's local address, or "" when the listener
    takes every address (then the address a client reached is not known; see ServingTLS)."""
    try:
        address = ipaddress.ip_address(bind_address)
    except ValueError:
        return ""
    if address.is_unspecified:
        return ""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return address.compressed


def _parse_sni_flags(values: Sequence[str]) -> list[NamedCertKey]:
    parsed: list[NamedCertKey] = []
    for value in values:
        try:
            named = parse_named_cert_key(value)
        except ValueError as err:
            raise TLSConfigError(
                f"invalid argument {go_quote(value)} for {go_quote(SNI_FLAG)} flag: {err}"
            ) from None
        if not named.cert_file or not named.key_file:
            raise TLSConfigError(
                f"{SNI_FLAG} {go_quote(value)}: missing filename for the certificate or the key"
            )
        parsed.append(named)
    return parsed


class ServingTLS:
    """An ssl.SSLContext for the HTTPS listener whose certificates follow the files on disk.

    With --tls-sni-cert-key, each named pair gets its own context with the same settings and
    client CAs, and an SNI callback on `context` switches a handshake to it by name. A client
    without SNI gets a named certificate claiming the listener's IP only when --bind-address
    is one IP: Go matches the local address of each connection, which Python's SNI callback
    cannot see (asyncio and uvloop hand it only the SSLObject).
    """

    def __init__(self, config: ServingCertConfig) -> None:
        # Validate flags before touching the disk, so a typo does not leave generated files.
        min_version = tls_min_version(config.min_version)
        ciphers = openssl_cipher_names(config.cipher_suites)
        named_flags = _parse_sni_flags(config.sni_cert_keys)
        self.cert_path, self.key_path = ensure_serving_cert(config)
        self._min_version, self._cipher_list = self._negotiation(
            min_version, ciphers, bool(config.cipher_suites)
        )
        self._ciphers = ciphers
        # Client CAs as added (a file path or PEM data), replayed into contexts made later.
        self._client_cas: list[tuple[str | None, str | None]] = []
        self._client_ca_files: tuple[str, ...] = ()
        # The listener's context. Every certificate, the default one after a reload included,
        # is served from a context of its own, to which the SNI callback switches handshakes:
        # loading a new pair over an old one would keep an old key of another type.
        self.context = self._new_context()
        self._files = _CertKeyFiles(self.cert_path, self.key_path, "serving", "serving certificate")
        self._leaf = self._files.load(self.context)
        self._default = self.context
        self._warn_if_suites_unusable(self._leaf, "serving")
        self._log_loaded("Loaded")
        self._local_ip = _local_ip_name(config.bind_address)
        self._named = [self._load_named(index, flag) for index, flag in enumerate(named_flags)]
        self._selection = self._select()
        if self._named:
            self.context.sni_callback = self._switch_context

    @staticmethod
    def _negotiation(
        min_version: ssl.TLSVersion, ciphers: tuple[str, ...], suites_configured: bool
    ) -> tuple[ssl.TLSVersion, str]:
        """The minimum version and OpenSSL cipher list to serve ("" keeps OpenSSL's default)."""
        if not suites_configured or min_version >= ssl.TLSVersion.TLSv1_3:
            return min_version, ""
        if not ciphers:
            # Only TLS 1.3 names were given: Go then has no TLS 1.2 suite and fails every
            # TLS 1.2 handshake; refusing TLS 1.2 outright says the same thing more clearly.
            log.warning("--tls-cipher-suites names only TLS 1.3 suites; TLS 1.2 is disabled")
            return ssl.TLSVersion.TLSv1_3, ""
        usable: list[str] = []
        insecure = set(GO_INSECURE_CIPHER_SUITES.values())
        for name in ciphers:
            probe = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            try:
                probe.set_ciphers(name)
            except ssl.SSLError:
                log.warning(
                    "Cipher suite %s is not available in %s; ignored",
                    _GO_NAMES[name],
                    ssl.OPENSSL_VERSION,
                )
                continue
            if name in insecure:
                log.warning("Use of insecure cipher '%s' detected.", _GO_NAMES[name])
            usable.append(name)
        if not usable:
            raise TLSConfigError(
                "none of the TLS 1.2 cipher suites in --tls-cipher-suites is available in "
                f"{ssl.OPENSSL_VERSION}: {', '.join(_GO_NAMES[name] for name in ciphers)}"
            )
        cipher_list = ":".join(usable)
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).set_ciphers(cipher_list)
        except ssl.SSLError as err:
            raise TLSConfigError(f"cannot use cipher suites {cipher_list}: {err}") from None
        return min_version, cipher_list

    def _new_context(self) -> ssl.SSLContext:
        """A context with the listener's settings and client CAs, and no certificate yet.

        Every context gets all of them: after an SNI switch OpenSSL verifies client
        certificates against the new context's CA store, and ALPN is its callback too.
        """
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.verify_mode = ssl.CERT_NONE  # until a client CA is added
        context.minimum_version = self._min_version
        context.options |= ssl.OP_NO_RENEGOTIATION  # Go servers never renegotiate either
        context.set_alpn_protocols(["http/1.1"])  # aiohttp speaks HTTP/1.1 only
        if self._cipher_list:
            context.set_ciphers(self._cipher_list)
        for ca_file, ca_data in self._client_cas:
            context.load_verify_locations(cafile=ca_file, cadata=ca_data)
        if self._client_cas:
            context.verify_mode = ssl.CERT_OPTIONAL
        return context

    def _contexts(self) -> list[ssl.SSLContext]:
        contexts = [self.context, *(named.context for named in self._named)]
        if self._default is not self.context:
            contexts.append(self._default)
        return contexts

    def _warn_if_suites_unusable(self, leaf: x509.Certificate, role: str) -> None:
        if not self._ciphers or self._min_version >= ssl.TLSVersion.TLSv1_3:
            return
        rsa_key = isinstance(leaf.public_key(), rsa.RSAPublicKey)
        if not any(("ECDSA" not in name) == rsa_key for name in self._ciphers):
            log.warning(
                "No cipher suite in --tls-cipher-suites works with the %s %s key; "
                "TLS 1.2 clients will fail (TLS 1.3 is unaffected)",
                _key_description(leaf),
                role,
            )

    def _log_loaded(self, verb: str) -> None:
        leaf = self._leaf
        log.info("%s serving certificate %s: %s", verb, self.cert_path, _describe(leaf))
        self._warn_if_expired(leaf, f"Serving certificate {self.cert_path}")

    @staticmethod
    def _warn_if_expired(leaf: x509.Certificate, what: str) -> None:
        not_after = leaf.not_valid_after_utc
        if not_after < datetime.datetime.now(datetime.UTC):
            log.warning("%s expired at %s", what, not_after)

    # --- named (SNI) certificates -------------------------------------------------------------

    def _load_named(self, index: int, flag: NamedCertKey) -> _NamedCertificate:
        files = _CertKeyFiles(
            Path(flag.cert_file), Path(flag.key_file), "SNI", f"SNI certificate [{index}]"
        )
        context = self._new_context()
        try:
            leaf = files.load(context)
        except TLSConfigError as err:
            raise TLSConfigError(f"{SNI_FLAG} {go_quote(str(flag))}: {err}") from None
        named = _NamedCertificate(flag, files, context, leaf)
        self._log_named(index, named, "Loaded")
        return named

    def _log_named(self, index: int, named: _NamedCertificate, verb: str) -> None:
        explicit = bool(named.flag.names)
        names = (
            named.flag.names if explicit else tuple(dict.fromkeys(certificate_names(named.leaf)))
        )
        log.info(
            "%s SNI certificate [%d] %s: %s names=[%s] (%s)",
            verb,
            index,
            named.files.cert_path,
            _describe(named.leaf),
            ",".join(names),
            "explicit" if explicit else "from the certificate",
        )
        if explicit:
            # crypto/tls lower-cases the client's name, never the patterns.
            for pattern in names:
                if pattern != pattern.lower():
                    log.warning(
                        "%s pattern %s of SNI certificate [%d] never matches: client names "
                        "are compared in lower case",
                        SNI_FLAG,
                        go_quote(pattern),
                        index,
                    )
        self._warn_if_suites_unusable(named.leaf, "SNI")
        self._warn_if_expired(named.leaf, f"SNI certificate {named.files.cert_path}")

    def _select(self) -> _Selection:
        if not self._named:
            return _Selection({}, None, ())
        table = build_name_table(
            [(named.flag.names, certificate_names(named.leaf)) for named in self._named]
        )
        by_name = {name: self._named[index].context for name, index in table.items()}
        without_sni = by_name.get(self._local_ip) if self._local_ip else None
        if without_sni is None:
            without_sni = by_name.get("")  # a pattern list with an empty name, as Go looks up ""
        # Go falls back over the default, then the certificates that won a name (in map order;
        # here in flag order): one that lost all its names is never served.
        valid_for = (
            (HostnameMatcher(self._leaf), None),
            *(
                (HostnameMatcher(self._named[index].leaf), self._named[index].context)
                for index in sorted(set(table.values()))
            ),
        )
        return _Selection(by_name, without_sni, valid_for)

    def _switch_context(
        self, ssl_object: ssl.SSLObject, server_name: str | None, _default: ssl.SSLContext
    ) -> None:
        """SNI callback: move the handshake to the context of the certificate for this name."""
        selection = self._selection
        context = selection.without_sni if server_name is None else selection.for_name(server_name)
        if context is None:
            context = self._default
        if context is not self.context:
            ssl_object.context = context

    # --- reloading ----------------------------------------------------------------------------

    def reload_if_changed(self) -> bool:
        """Reload every pair whose files changed; True when any was reloaded.

        New handshakes get the new certificate; open connections keep theirs. A pair that does
        not load is logged and its current certificate stays; it is retried on its next change.
        """
        reloaded = self._reload_default()
        for index, named in enumerate(self._named):
            reloaded = self._reload_named(index, named) or reloaded
        if reloaded:
            self._selection = self._select()
        return reloaded

    def _reload_default(self) -> bool:
        signature = self._files.changed()
        if signature is None:
            return False
        context = self._new_context()
        try:
            self._leaf = self._files.load(context)
        except TLSConfigError as err:
            self._files.failed(signature, err)
            return False
        self._default = context
        self.context.sni_callback = self._switch_context
        self._warn_if_suites_unusable(self._leaf, "serving")
        self._log_loaded("Reloaded")
        return True

    def _reload_named(self, index: int, named: _NamedCertificate) -> bool:
        signature = named.files.changed()
        if signature is None:
            return False
        # A fresh context: loading over the old one would keep an old key of another type.
        context = self._new_context()
        try:
            leaf = named.files.load(context)
        except TLSConfigError as err:
            named.files.failed(signature, err)
            return False
        named.context, named.leaf = context, leaf
        self._log_named(index, named, "Reloaded")
        return True

    async def watch(self, interval: float = 5.0) -> None:
        """Poll the files every `interval` seconds and reload on change, until cancelled."""
        while True:
            await asyncio.sleep(interval)
            try:
                self.reload_if_changed()
            except Exception:
                log.exception("Serving certificate reload failed")

    # --- client CAs ---------------------------------------------------------------------------

    def require_client_ca(self, ca_files: Sequence[str]) -> None:
        """Request client certificates and verify them against these CA bundles.

        CERT_OPTIONAL: clients without a certificate still connect (token authentication), but
        a certificate from an unknown CA fails the handshake (Python has no verify callback).
        CAs cannot be removed from a live context, so this only adds.
        """
        probe = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        for ca_file in ca_files:
            try:
                probe.load_verify_locations(cafile=ca_file)
            except (OSError, ssl.SSLError) as err:
                reason = err.strerror if isinstance(err, OSError) and err.strerror else err
                raise TLSConfigError(f"cannot load client CA file {ca_file}: {reason}") from None
        for ca_file in ca_files:
            self._trust_client_ca(ca_file, None)
        self._client_ca_files = (*self._client_ca_files, *ca_files)

    def add_client_ca_data(self, pem: str) -> None:
        """Request client certificates and trust these PEM CAs in the handshake (CAs from the
        extension-apiserver-authentication ConfigMap). Which CA may vouch for what is decided
        by the authenticators; CAs cannot be removed from a live context, so rotation adds."""
        if not pem.strip():
            return
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_verify_locations(cadata=pem)
        except ssl.SSLError as err:
            raise TLSConfigError(f"cannot load client CA data: {err}") from None
        self._trust_client_ca(None, pem)

    def _trust_client_ca(self, ca_file: str | None, ca_data: str | None) -> None:
        # Into every live context, and remembered for contexts made by later reloads.
        for context in self._contexts():
            context.load_verify_locations(cafile=ca_file, cadata=ca_data)
            context.verify_mode = ssl.CERT_OPTIONAL
        self._client_cas.append((ca_file, ca_data))

    @property
    def client_ca_files(self) -> tuple[str, ...]:
        """CA bundles added by require_client_ca, in order."""
        return self._client_ca_files

    def certificate_info(self) -> dict[str, object]:
        """Describe the default certificate being served, for logs and debugging."""
        leaf = self._leaf
        dns_names, ip_addresses = _san_values(leaf)
        return {
            "cert_file": str(self.cert_path),
            "key_file": str(self.key_path),
            "subject": leaf.subject.rfc4514_string(),
            "subject_cn": _cn(leaf.subject),
            "issuer_cn": _cn(leaf.issuer),
            "serial_number": leaf.serial_number,
            "dns_names": dns_names,
            "ip_addresses": ip_addresses,
            "not_before": leaf.not_valid_before_utc.isoformat(),
            "not_after": leaf.not_valid_after_utc.isoformat(),
            "key": _key_description(leaf),
        }
