"""Serving certificates and the TLS context of the HTTPS listener.

Ports what k8s.io/apiserver does for `--cert-dir`, `--tls-cert-file`, `--tls-private-key-file`,
`--tls-min-version` and `--tls-cipher-suites`: a generated self-signed certificate when no files
are given (`MaybeDefaultWithSelfSignedCerts`), Go cipher-suite and version names
(component-base `cli/flag`), and reloading of the serving certificate when its files change
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

__all__ = [
    "GO_CIPHER_SUITES",
    "GO_INSECURE_CIPHER_SUITES",
    "GO_TLS13_CIPHER_SUITES",
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

_PAIR_NAME = "apiserver"
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
    cert_path = cert_dir / f"{_PAIR_NAME}.crt"
    key_path = cert_dir / f"{_PAIR_NAME}.key"
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


class ServingTLS:
    """An ssl.SSLContext for the HTTPS listener whose certificate follows the files on disk."""

    def __init__(self, config: ServingCertConfig) -> None:
        # Validate flags before touching the disk, so a typo does not leave generated files.
        min_version = tls_min_version(config.min_version)
        ciphers = openssl_cipher_names(config.cipher_suites)
        self.cert_path, self.key_path = ensure_serving_cert(config)
        self.context = self._new_context(min_version, ciphers, bool(config.cipher_suites))
        self._ciphers = ciphers
        self._client_ca_files: tuple[str, ...] = ()
        self._signature: _Signature | None = None
        self._last_stat_error = ""
        self._leaf = self._load()
        self._log_loaded("Loaded")

    @staticmethod
    def _new_context(
        min_version: ssl.TLSVersion, ciphers: tuple[str, ...], suites_configured: bool
    ) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        # Client-certificate authentication is added later by require_client_ca().
        context.verify_mode = ssl.CERT_NONE
        context.minimum_version = min_version
        context.options |= ssl.OP_NO_RENEGOTIATION  # Go servers never renegotiate either
        context.set_alpn_protocols(["http/1.1"])  # aiohttp speaks HTTP/1.1 only
        if not suites_configured or min_version >= ssl.TLSVersion.TLSv1_3:
            return context
        if not ciphers:
            # Only TLS 1.3 names were given: Go then has no TLS 1.2 suite and fails every
            # TLS 1.2 handshake; refusing TLS 1.2 outright says the same thing more clearly.
            log.warning("--tls-cipher-suites names only TLS 1.3 suites; TLS 1.2 is disabled")
            context.minimum_version = ssl.TLSVersion.TLSv1_3
            return context
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
        try:
            context.set_ciphers(":".join(usable))
        except ssl.SSLError as err:
            raise TLSConfigError(f"cannot use cipher suites {':'.join(usable)}: {err}") from None
        return context

    def _load(self) -> x509.Certificate:
        """Load the files into the live context after a trial load; return the leaf.

        A failed load_cert_chain can leave a context with a new certificate and no key, so the
        pair is first loaded into a scratch context, and only then into the live one.
        """
        try:
            cert_file = self.cert_path.open("rb")
        except OSError as err:
            raise TLSConfigError(
                f"cannot read serving certificate {self.cert_path}: {err.strerror or err}"
            ) from None
        with cert_file:
            try:
                key_file = self.key_path.open("rb")
            except OSError as err:
                raise TLSConfigError(
                    f"cannot read serving key {self.key_path}: {err.strerror or err}"
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
                        f"serving certificate {self.cert_path} holds no PEM certificate"
                    ) from None
                cert_name = _fd_path(cert_file, self.cert_path)
                key_name = _fd_path(key_file, self.key_path)
                self._load_pair(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), cert_name, key_name)
                try:
                    self._load_pair(self.context, cert_name, key_name)
                except TLSConfigError:
                    # Only an in-place rewrite between the two loads gets here; retry next poll.
                    self._signature = None
                    raise
        self._signature = signature
        self._warn_if_suites_unusable(leaf)
        return leaf

    def _load_pair(self, context: ssl.SSLContext, cert_name: str, key_name: str) -> None:
        what = f"serving certificate {self.cert_path} and key {self.key_path}"
        try:
            context.load_cert_chain(cert_name, key_name, password=_refuse_password)
        except _EncryptedKeyError:
            raise TLSConfigError(f"serving key {self.key_path} is encrypted") from None
        except ssl.SSLError as err:
            if "KEY_VALUES_MISMATCH" in str(err):
                raise TLSConfigError(f"{what} do not match") from None
            raise TLSConfigError(f"cannot load {what}: {err}") from None
        except OSError as err:
            raise TLSConfigError(f"cannot load {what}: {err.strerror or err}") from None

    def _warn_if_suites_unusable(self, leaf: x509.Certificate) -> None:
        if not self._ciphers or self.context.minimum_version >= ssl.TLSVersion.TLSv1_3:
            return
        rsa_key = isinstance(leaf.public_key(), rsa.RSAPublicKey)
        if not any(("ECDSA" not in name) == rsa_key for name in self._ciphers):
            log.warning(
                "No cipher suite in --tls-cipher-suites works with the %s serving key; "
                "TLS 1.2 clients will fail (TLS 1.3 is unaffected)",
                _key_description(leaf),
            )

    def _log_loaded(self, verb: str) -> None:
        leaf = self._leaf
        dns_names, ip_addresses = _san_values(leaf)
        not_after = leaf.not_valid_after_utc
        log.info(
            '%s serving certificate %s: "%s" [%s] issuer="%s" serial=%x validUntil=%s',
            verb,
            self.cert_path,
            _cn(leaf.subject),
            ",".join([*dns_names, *ip_addresses]),
            _cn(leaf.issuer),
            leaf.serial_number,
            not_after.isoformat(),
        )
        if not_after < datetime.datetime.now(datetime.UTC):
            log.warning("Serving certificate %s expired at %s", self.cert_path, not_after)

    def reload_if_changed(self) -> bool:
        """Reload the pair into the live context if either file changed; True when reloaded.

        New handshakes get the new certificate; open connections keep theirs. A pair that does
        not load is logged and the current certificate stays; it is retried on its next change.
        """
        try:
            signature = (_stat_key(self.cert_path.stat()), _stat_key(self.key_path.stat()))
        except OSError as err:
            message = f"{err.filename}: {err.strerror or err}"
            if message != self._last_stat_error:
                log.warning("Keeping the current serving certificate: cannot stat %s", message)
                self._last_stat_error = message
            return False
        self._last_stat_error = ""
        if signature == self._signature:
            return False
        try:
            self._leaf = self._load()
        except TLSConfigError as err:
            log.error("Keeping the current serving certificate: %s", err)
            if self._signature is not None:
                self._signature = signature  # log once per change, not once per poll
            return False
        self._log_loaded("Reloaded")
        return True

    async def watch(self, interval: float = 5.0) -> None:
        """Poll the files every `interval` seconds and reload on change, until cancelled."""
        while True:
            await asyncio.sleep(interval)
            try:
                self.reload_if_changed()
            except Exception:
                log.exception("Serving certificate reload failed")

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
            self.context.load_verify_locations(cafile=ca_file)
        if ca_files:
            self.context.verify_mode = ssl.CERT_OPTIONAL
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
        self.context.load_verify_locations(cadata=pem)
        self.context.verify_mode = ssl.CERT_OPTIONAL

    @property
    def client_ca_files(self) -> tuple[str, ...]:
        """CA bundles added by require_client_ca, in order."""
        return self._client_ca_files

    def certificate_info(self) -> dict[str, object]:
        """Describe the certificate being served, for logs and debugging."""
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
