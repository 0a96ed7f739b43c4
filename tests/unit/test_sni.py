"""--tls-sni-cert-key rules: the flag value, the names a certificate claims, which certificate
wins a name, and how a client's name is looked up (adapter/server/sni.py)."""

import datetime
import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from adapter.server.sni import (
    HostnameMatcher,
    NamedCertKey,
    build_name_table,
    certificate_names,
    lookup,
    parse_named_cert_key,
)

# --- the flag value (component-base NamedCertKey.Set) -----------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("a.crt,a.key", NamedCertKey("a.crt", "a.key"), id="pair"),
        pytest.param(" a.crt , a.key ", NamedCertKey("a.crt", "a.key"), id="trimmed"),
        pytest.param(
            "a.crt,a.key:foo.com", NamedCertKey("a.crt", "a.key", ("foo.com",)), id="one-name"
        ),
        pytest.param(
            "a.crt,a.key: *.foo.com , foo.com ",
            NamedCertKey("a.crt", "a.key", ("*.foo.com", "foo.com")),
            id="names-trimmed",
        ),
        pytest.param(
            "a.crt,a.key:foo.com,",
            NamedCertKey("a.crt", "a.key", ("foo.com", "")),
            id="trailing-comma-keeps-an-empty-name",
        ),
        pytest.param(
            "a.crt,a.key:foo.com:8443",
            NamedCertKey("a.crt", "a.key", ("foo.com:8443",)),
            id="only-the-first-colon-splits",
        ),
        pytest.param(",a.key", NamedCertKey("", "a.key"), id="empty-cert-path-parses"),
    ],
)
def test_parse_named_cert_key(value: str, expected: NamedCertKey) -> None:
    assert parse_named_cert_key(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param("a.crt", "expected comma separated certificate and key file paths", id="one"),
        pytest.param(
            "a.crt,a.key,b.key",
            "expected comma separated certificate and key file paths",
            id="three",
        ),
        pytest.param("", "expected comma separated certificate and key file paths", id="empty"),
        pytest.param(
            ":foo.com", "expected comma separated certificate and key file paths", id="no-paths"
        ),
        pytest.param(
            "c:/a.crt,c:/a.key",
            "expected comma separated certificate and key file paths",
            id="drive-letter-colon-splits",
        ),
        pytest.param("a.crt,a.key:", "empty names list is not allowed", id="no-names"),
        pytest.param("a.crt,a.key:  ", "empty names list is not allowed", id="blank-names"),
        # Go checks the names before the paths.
        pytest.param("a.crt:", "empty names list is not allowed", id="names-checked-first"),
    ],
)
def test_parse_named_cert_key_errors(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{message}$"):
        parse_named_cert_key(value)


def test_named_cert_key_prints_like_go() -> None:
    assert str(NamedCertKey("a.crt", "a.key")) == "a.crt,a.key"
    assert str(NamedCertKey("a.crt", "a.key", ("x", "*.y"))) == "a.crt,a.key:x,*.y"


# --- names from a certificate (getCertificateNames) -------------------------------------------


def certificate(
    common_names: tuple[str, ...] = (), dns: tuple[str, ...] = (), ips: tuple[str, ...] = ()
) -> x509.Certificate:
    """A self-signed certificate with these subject CNs (in order) and SANs."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn) for cn in common_names])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
    )
    sans: list[x509.GeneralName] = [x509.DNSName(name) for name in dns]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(key, hashes.SHA256())


@pytest.mark.parametrize(
    ("common_names", "dns", "ips", "expected"),
    [
        pytest.param(
            ("foo.example.com",),
            ("bar.example.com", "foo.example.com"),
            ("10.0.0.1",),
            ["foo.example.com", "bar.example.com", "foo.example.com"],
            id="cn-then-dns-sans-no-ip-sans",
        ),
        pytest.param(("*.example.com",), (), (), ["*.example.com"], id="wildcard-cn"),
        pytest.param(("*",), (), (), ["*"], id="bare-star-cn"),
        pytest.param(("*.*.example.com",), (), (), [], id="two-wildcards"),
        pytest.param(("10.0.0.1",), (), (), [], id="ipv4-cn"),
        pytest.param(("010.000.000.001",), (), (), [], id="ipv4-cn-leading-zeros"),
        pytest.param(("10.0.0.256",), (), (), ["10.0.0.256"], id="not-an-ip-but-a-dns-name"),
        pytest.param(("::1",), (), (), [], id="ipv6-cn"),
        pytest.param(("Foo.example.com",), (), (), [], id="upper-case-cn-is-not-dns-1123"),
        pytest.param(("system:node:worker-1",), (), (), [], id="user-like-cn"),
        pytest.param((), ("Upper.Example.com",), (), ["Upper.Example.com"], id="sans-as-written"),
        pytest.param((), (), ("10.0.0.1",), [], id="only-ip-sans"),
        pytest.param(("first.test", "last.test"), (), (), ["last.test"], id="last-cn-wins"),
    ],
)
def test_certificate_names(
    common_names: tuple[str, ...], dns: tuple[str, ...], ips: tuple[str, ...], expected: list[str]
) -> None:
    assert certificate_names(certificate(common_names, dns, ips)) == expected


# --- which certificate wins a name (BuildNamedCertificates) -----------------------------------


@pytest.mark.parametrize(
    ("claims", "expected"),
    [
        pytest.param(
            [((), ["a.test"]), ((), ["a.test", "b.test"])],
            {"a.test": 0, "b.test": 1},
            id="earlier-extracted-wins",
        ),
        pytest.param(
            [(("a.test",), []), (("a.test",), [])],
            {"a.test": 0},
            id="earlier-explicit-wins",
        ),
        pytest.param(
            [((), ["a.test"]), (("a.test",), ["z.test"])],
            {"a.test": 1},
            id="explicit-beats-earlier-extracted",
        ),
        pytest.param(
            [(("b.test",), ["a.test"])],
            {"b.test": 0},
            id="explicit-names-replace-the-certificates-own",
        ),
        pytest.param(
            [(("*.example.com",), []), ((), ["a.example.com"])],
            {"*.example.com": 0, "a.example.com": 1},
            id="wildcard-and-exact-both-kept",
        ),
        pytest.param(
            [(("Upper.test", "10.0.0.1", ""), [])],
            {"Upper.test": 0, "10.0.0.1": 0, "": 0},
            id="patterns-kept-as-written",
        ),
        pytest.param([], {}, id="none"),
    ],
)
def test_build_name_table(
    claims: list[tuple[tuple[str, ...], list[str]]], expected: dict[str, int]
) -> None:
    assert build_name_table(claims) == expected


# --- the client's name (crypto/tls getCertificate) --------------------------------------------

TABLE = {"*.example.com": "wildcard", "a.example.com": "exact", "Upper.test": "upper", "*": "star"}


@pytest.mark.parametrize(
    ("server_name", "expected"),
    [
        pytest.param("a.example.com", "exact", id="exact-beats-wildcard"),
        pytest.param("A.Example.COM", "exact", id="client-name-lower-cased"),
        pytest.param("b.example.com", "wildcard", id="wildcard"),
        pytest.param("x.a.example.com", None, id="wildcard-covers-one-label"),
        pytest.param("example.com", None, id="wildcard-needs-a-label"),
        pytest.param("Upper.test", None, id="patterns-are-not-lower-cased"),
        pytest.param("localhost", "star", id="single-label-against-star"),
        pytest.param("a.example.com.", None, id="trailing-dot-is-another-name"),
        pytest.param("", None, id="empty"),
    ],
)
def test_lookup(server_name: str, expected: str | None) -> None:
    assert lookup(TABLE, server_name) == expected


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        pytest.param("other.test", True, id="dns-san"),
        pytest.param("OTHER.Test", True, id="case-insensitive"),
        pytest.param("other.test.", True, id="trailing-dot"),
        pytest.param("x.wild.test", True, id="wildcard-san"),
        pytest.param("wild.test", False, id="wildcard-needs-a-label"),
        pytest.param("y.x.wild.test", False, id="wildcard-one-label"),
        pytest.param("under_score.test", True, id="underscore-allowed"),
        pytest.param("192.0.2.1", True, id="ip-san"),
        pytest.param("[192.0.2.1]", True, id="bracketed-ip"),
        pytest.param("::ffff:192.0.2.1", True, id="ipv4-mapped-equals-ipv4"),
        pytest.param("192.0.2.2", False, id="other-ip"),
        pytest.param("cn.test", False, id="cn-is-never-used"),
        pytest.param("", False, id="empty"),
    ],
)
def test_hostname_matcher(host: str, expected: bool) -> None:
    cert = certificate(
        ("cn.test",), dns=("other.test", "*.wild.test", "under_score.test"), ips=("192.0.2.1",)
    )
    assert HostnameMatcher(cert)(host) is expected


def test_hostname_matcher_invalid_pattern_matches_only_exactly() -> None:
    # A SAN that is no valid pattern (a '*' inside a label) is compared as a plain string.
    matches = HostnameMatcher(certificate(dns=("f*o.test",)))
    assert matches("f*o.test")
    assert not matches("foo.test")
