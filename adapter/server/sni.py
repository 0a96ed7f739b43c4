"""Named serving certificates (`--tls-sni-cert-key`): the flag value and which name picks which
certificate, as k8s.io/apiserver and Go's crypto/tls decide it.

Ports component-base `cli/flag.NamedCertKey.Set` (the flag value), apiserver
`dynamiccertificates.BuildNamedCertificates` and `getCertificateNames` (the name table), and the
selection in crypto/tls `Config.getCertificate` (exact name, then the first label as `*`, then
the first certificate valid for the name by `x509.Certificate.VerifyHostname`). ServingTLS
(adapter/server/tls.py) loads the files and switches contexts; this module holds no TLS state.
"""

import ipaddress
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from cryptography import x509
from cryptography.x509.oid import NameOID

__all__ = [
    "SNI_FLAG",
    "HostnameMatcher",
    "NamedCertKey",
    "build_name_table",
    "certificate_names",
    "go_quote",
    "lookup",
    "parse_named_cert_key",
]

SNI_FLAG = "--tls-sni-cert-key"

# k8s.io/apimachinery validation.IsDNS1123Subdomain: at most 253 bytes of lower-case labels.
_DNS1123_LABEL = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN = re.compile(rf"{_DNS1123_LABEL}(?:\.{_DNS1123_LABEL})*")
_DNS1123_SUBDOMAIN_MAX_LENGTH = 253
_SLOPPY_IPV4 = re.compile(r"(\d+)\.(\d+)\.(\d+)\.(\d+)")

_T = TypeVar("_T")


def go_quote(text: str) -> str:
    """Quote like Go's %q, for messages that repeat a flag value."""
    return json.dumps(text, ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class NamedCertKey:
    """One `--tls-sni-cert-key` value: a certificate and key file and explicit name patterns."""

    cert_file: str
    key_file: str
    names: tuple[str, ...] = ()

    def __str__(self) -> str:
        text = f"{self.cert_file},{self.key_file}"
        return f"{text}:{','.join(self.names)}" if self.names else text


def parse_named_cert_key(value: str) -> NamedCertKey:
    """Parse `cert,key` or `cert,key:name1,name2` as NamedCertKey.Set does.

    The names follow the first ':'; each part is trimmed. Raises ValueError with Go's message.
    Empty names inside a list (`a,b:x.com,`) are kept, as Go keeps them.
    """
    cert_and_key, colon, name_list = value.partition(":")
    names: tuple[str, ...] = ()
    if colon:
        name_list = name_list.strip()
        if not name_list:
            raise ValueError("empty names list is not allowed")
        names = tuple(name.strip() for name in name_list.split(","))
    paths = cert_and_key.strip().split(",")
    if len(paths) != 2:
        raise ValueError("expected comma separated certificate and key file paths")
    return NamedCertKey(paths[0].strip(), paths[1].strip(), names)


def _is_ip_sloppy(text: str) -> bool:
    """k8s.io/utils/net.ParseIPSloppy(text) != nil: Go's ParseIP, plus leading zeros in IPv4."""
    if "%" not in text:  # Go accepts no IPv6 zone
        try:
            ipaddress.ip_address(text)
        except ValueError:
            pass
        else:
            return True
    match = _SLOPPY_IPV4.fullmatch(text)
    return match is not None and all(int(octet) <= 255 for octet in match.groups())


def _is_dns1123_subdomain(text: str) -> bool:
    return (
        len(text.encode()) <= _DNS1123_SUBDOMAIN_MAX_LENGTH
        and _DNS1123_SUBDOMAIN.fullmatch(text) is not None
    )


def _common_name(cert: x509.Certificate) -> str:
    # Go's pkix.Name keeps the last CommonName attribute of the subject.
    attributes = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not attributes:
        return ""
    value = attributes[-1].value
    return value if isinstance(value, str) else value.decode(errors="replace")


def _dns_sans(cert: x509.Certificate) -> list[str]:
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return sans.get_values_for_type(x509.DNSName)


def certificate_names(cert: x509.Certificate) -> list[str]:
    """The names a certificate claims when no patterns are given (getCertificateNames).

    The CN when it is `*` or a DNS-1123 subdomain (after one leading `*.`) and not an IP
    address, then every DNS SAN as written. IP SANs are left out: SNI never carries an IP.
    """
    names: list[str] = []
    cn = _common_name(cert)
    cn_is_domain = cn == "*" or _is_dns1123_subdomain(cn.removeprefix("*."))
    if cn_is_domain and not _is_ip_sloppy(cn):
        names.append(cn)
    names.extend(_dns_sans(cert))
    return names


def build_name_table(
    claims: Sequence[tuple[Sequence[str], Sequence[str]]],
) -> dict[str, int]:
    """Map each name to the index of the certificate that serves it (BuildNamedCertificates).

    `claims[i]` is (explicit patterns, names extracted from the certificate) for the i-th
    `--tls-sni-cert-key`. Extracted names count only for a certificate without patterns;
    explicit patterns beat extracted names; among equals the earlier flag wins. Keys are kept
    as written (Go lower-cases only the client's name).
    """
    table: dict[str, int] = {}
    explicit: dict[str, int] = {}
    # Backwards, so that earlier certificates overwrite later ones.
    for index in range(len(claims) - 1, -1, -1):
        patterns, extracted = claims[index]
        for name in patterns:
            explicit[name] = index
        if not patterns:
            for name in extracted:
                table[name] = index
    table.update(explicit)
    return table


def lookup(table: Mapping[str, _T], server_name: str) -> _T | None:
    """The entry for a client's SNI name: the exact name lower-cased, else its first label
    replaced by `*` (`a.b.example.com` -> `*.b.example.com`), as crypto/tls looks it up."""
    name = server_name.lower()
    found = table.get(name)
    if found is None and name:
        labels = name.split(".")
        labels[0] = "*"
        found = table.get(".".join(labels))
    return found


def _lower_ascii(text: str) -> str:
    return text.translate(_ASCII_LOWER)


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _valid_hostname(host: str, *, pattern: bool) -> bool:
    # crypto/x509 validHostname: RFC 6125 labels, plus '_' and a leading "*" label in patterns.
    if not pattern:
        host = host.removesuffix(".")
    if not host or host == "*":
        return False
    for position, label in enumerate(host.split(".")):
        if not label:
            return False
        if pattern and position == 0 and label == "*":
            continue
        for offset, char in enumerate(label):
            if char.isascii() and (char.isalnum() or char == "_" or (char == "-" and offset)):
                continue
            return False
    return True


_IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _fold_ipv4_mapped(address: _IPAddress) -> _IPAddress:
    # Go's ip.Equal treats ::ffff:a.b.c.d and a.b.c.d as the same address.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _go_ip(text: str) -> _IPAddress | None:
    """Go's net.ParseIP (no zones, no leading zeros), IPv4-mapped addresses folded to IPv4."""
    if "%" in text:
        return None
    try:
        return _fold_ipv4_mapped(ipaddress.ip_address(text))
    except ValueError:
        return None


class HostnameMatcher:
    """Whether a certificate is valid for a host name, as crypto/x509 VerifyHostname decides:
    IP addresses against IP SANs only; names against DNS SANs (case-insensitive, one leading
    `*` label, a trailing dot ignored); the CN is never used."""

    __slots__ = ("_ip_addresses", "_patterns")

    def __init__(self, cert: x509.Certificate) -> None:
        try:
            sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            sans = x509.SubjectAlternativeName([])
        self._patterns = tuple(
            (_lower_ascii(name), _valid_hostname(name, pattern=True))
            for name in sans.get_values_for_type(x509.DNSName)
        )
        self._ip_addresses = frozenset(
            _fold_ipv4_mapped(address)
            for address in sans.get_values_for_type(x509.IPAddress)
            if isinstance(address, ipaddress.IPv4Address | ipaddress.IPv6Address)
        )

    def __call__(self, host: str) -> bool:
        candidate_ip = host[1:-1] if len(host) >= 3 and host[0] == "[" and host[-1] == "]" else host
        ip = _go_ip(candidate_ip)
        if ip is not None:
            return ip in self._ip_addresses
        name = _lower_ascii(host)
        valid_name = _valid_hostname(name, pattern=False)
        for pattern, valid_pattern in self._patterns:
            if valid_name and valid_pattern:
                if _match_hostnames(pattern, name):
                    return True
            elif pattern not in ("", ".") and name not in ("", ".") and pattern == name:
                return True
        return False


def _match_hostnames(pattern: str, host: str) -> bool:
    host = host.removesuffix(".")
    if not pattern or not host:
        return False
    pattern_labels = pattern.split(".")
    host_labels = host.split(".")
    if len(pattern_labels) != len(host_labels):
        return False
    return all(
        (position == 0 and wanted == "*") or wanted == got
        for position, (wanted, got) in enumerate(zip(pattern_labels, host_labels, strict=True))
    )
