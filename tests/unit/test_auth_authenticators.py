"""Authenticators: ports of k8s's requestheader_test.go, x509_test.go, unionauth_test.go,
bearertoken_test.go and cached_token_authenticator_test.go."""

import asyncio
import datetime
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from adapter.auth import certificates
from adapter.auth.authenticators import (
    AuthenticatedGroupAdder,
    ClientCertAuthenticator,
    RequestHeaderAuthenticator,
    RequestHeaderConfig,
    TokenReviewAuthenticator,
    UnionAuthenticator,
    new_delegating_authenticator,
)
from adapter.auth.certificates import (
    CertificateRejected,
    ClientCertVerifier,
    certificate_identifier,
    credential_id,
)
from adapter.auth.credentials import AuthenticationFailed, Authenticator, AuthRequest
from adapter.auth.token_review import bearer_token
from adapter.auth.user import CREDENTIAL_ID_KEY, UserInfo
from adapter.kube.api import KubeAPIError

NOW = datetime.datetime.now(datetime.UTC)
DAY = datetime.timedelta(days=1)

# --- a throwaway PKI --------------------------------------------------------------------------


@dataclass
class Issued:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(Encoding.DER)


def _name(cn: str, orgs: Sequence[str] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    if cn:
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


def make_ca(
    cn: str,
    *,
    not_after: datetime.datetime = NOW + DAY,
    eku: Sequence[x509.ObjectIdentifier] | None = None,
) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - DAY)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    )
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
    return Issued(builder.sign(key, hashes.SHA256()), key)


def issue(
    ca: Issued,
    cn: str,
    orgs: Sequence[str] = (),
    *,
    eku: Sequence[x509.ObjectIdentifier] | None = (ExtendedKeyUsageOID.CLIENT_AUTH,),
    not_before: datetime.datetime = NOW - DAY,
    not_after: datetime.datetime = NOW + DAY,
    serial: int | None = None,
) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn, orgs))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(serial or x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
    return Issued(builder.sign(ca.key, hashes.SHA256()), key)


CLIENT_CA = make_ca("client-ca")
FRONT_PROXY_CA = make_ca("front-proxy-ca")
OTHER_CA = make_ca("other-ca")


def req(headers: Sequence[tuple[str, str]] = (), cert: Issued | None = None) -> AuthRequest:
    return AuthRequest.of(headers, cert.der if cert is not None else None)


# --- TestRequestHeader -------------------------------------------------------------------------

PROXY_CERT = issue(FRONT_PROXY_CA, "front-proxy-client")


@pytest.mark.parametrize(
    ("name_headers", "uid_headers", "group_headers", "extra_prefixes", "headers", "expected"),
    [
        pytest.param(["X-Remote-User"], [], [], [], [], None, id="empty"),
        pytest.param(
            ["X-Remote-User"], [], [], [], [("X-Remote-Username", "Bob")], None, id="user-no-match"
        ),
        pytest.param(
            ["X-Remote-User"],
            [],
            [],
            [],
            [("X-Remote-User", "Bob")],
            UserInfo("Bob"),
            id="user-match",
        ),
        pytest.param(
            ["X-Remote-User"],
            [],
            [],
            [],
            [("Prefixed-X-Remote-User-With-Suffix", "Bob"), ("X-Remote-User-With-Suffix", "Bob")],
            None,
            id="user-exact-match",
        ),
        pytest.param(
            ["X-Remote-User", "A-Second-X-Remote-User", "Another-X-Remote-User"],
            [],
            [],
            [],
            [
                ("X-Remote-User", ""),
                ("A-Second-X-Remote-User", "firstusername"),
                ("Another-X-Remote-User", "secondusername"),
            ],
            UserInfo("firstusername"),
            id="user-first-match",
        ),
        pytest.param(
            ["x-REMOTE-user"],
            [],
            [],
            [],
            [("X-Remote-User", "Bob")],
            UserInfo("Bob"),
            id="user-case-insensitive",
        ),
        pytest.param(
            ["X-Remote-User"],
            [],
            ["X-Remote-Group"],
            [],
            [("X-Remote-User", "Bob")],
            UserInfo("Bob"),
            id="groups-none",
        ),
        pytest.param(
            ["X-Remote-User"],
            [],
            ["X-Group-1", "X-Group-2"],
            [],
            [
                ("X-Remote-User", "Bob"),
                ("X-Group-1", "one-a"),
                ("X-Group-1", "one-b"),
                ("X-Group-2", "two-a"),
                ("X-Group-2", "two-b"),
            ],
            UserInfo("Bob", groups=("one-a", "one-b", "two-a", "two-b")),
            id="groups-all-matches",
        ),
        pytest.param(
            ["X-Remote-User"],
            [],
            ["X-Remote-Group"],
            [],
            [("X-Remote-User", "Bob"), ("X-Remote-Group", "a,b")],
            UserInfo("Bob", groups=("a,b",)),
            id="groups-no-comma-split",
        ),
        pytest.param(
            ["X-Remote-User"],
            [],
            ["x-REMOTE-group"],
            [],
            [("X-Remote-User", "Bob"), ("X-Remote-Group", "Users")],
            UserInfo("Bob", groups=("Users",)),
            id="groups-case-insensitive",
        ),
        pytest.param(
            ["X-Remote-User"],
            [],
            ["X-Remote-Group"],
            [],
            [("X-Remote-User", "Bob"), ("X-Remote-Group", ""), ("X-Remote-Group", "g")],
            UserInfo("Bob", groups=("g",)),
            id="groups-skip-empty",
        ),
        pytest.param(
            ["X-Remote-User"],
            ["X-Remote-Uid"],
            [],
            [],
            [("X-Remote-User", "Bob")],
            UserInfo("Bob"),
            id="uid-none",
        ),
        pytest.param(
            ["X-Remote-User"],
            ["X-Remote-Uid"],
            [],
            [],
            [("X-Remote-User", "Bob"), ("X-Remote-Uid", "u-1")],
            UserInfo("Bob", uid="u-1"),
            id="uid-exact-match",
        ),
        pytest.param(
            ["X-Remote-User"],
            ["X-Uid-1", "X-Uid-2"],
            [],
            [],
            [("X-Remote-User", "Bob"), ("X-Uid-1", ""), ("X-Uid-2", "second")],
            UserInfo("Bob", uid="second"),
            id="uid-first-match",
        ),
        pytest.param(
            ["X-Remote-User"],
            [],
            [],
            [],
            [("X-Remote-User", "Bob"), ("X-Remote-Uid", "u-1")],
            UserInfo("Bob"),
            id="uid-not-defaulted",
        ),
        pytest.param(
            ["X-Remote-User"],
            [],
            [],
            ["X-Remote-Extra-1-", "X-Remote-Extra-2-"],
            [
                ("X-Remote-User", "Bob"),
                ("X-Remote-Extra-1-Key1", "alpha"),
                ("X-Remote-Extra-1-Key2", "beta"),
                ("X-Remote-Extra-2-key1", "alpha-2"),
                ("X-Remote-Extra-2-Key2", "beta-2"),
            ],
            UserInfo("Bob", extra={"key1": ("alpha", "alpha-2"), "key2": ("beta", "beta-2")}),
            id="extra-prefix-merge",
        ),
        pytest.param(
            ["X-Remote-User"],
            [],
            [],
            ["x-REMOTE-extra-"],
            [
                ("X-Remote-User", "Bob"),
                ("X-Remote-Extra-Scopes", "one"),
                ("X-Remote-Extra-Scopes", "two"),
                ("X-Remote-Extras-Not", "no"),
                ("X-Other", "no"),
            ],
            UserInfo("Bob", extra={"scopes": ("one", "two")}),
            id="extra-case-insensitive-unrelated",
        ),
        pytest.param(
            ["X-Remote-User"],
            [],
            [],
            ["X-Remote-Extra-"],
            [
                ("X-Remote-User", "Bob"),
                ("X-Remote-Extra-Alpha%2fbeta", "v"),
                ("X-Remote-Extra-Bad%zz", "w"),
                ("X-Remote-Extra-Caf%C3%A9", "x"),
            ],
            UserInfo("Bob", extra={"alpha/beta": ("v",), "bad%zz": ("w",), "café": ("x",)}),
            id="extra-escaped-keys",
        ),
    ],
)
async def test_request_header(
    name_headers: list[str],
    uid_headers: list[str],
    group_headers: list[str],
    extra_prefixes: list[str],
    headers: list[tuple[str, str]],
    expected: UserInfo | None,
) -> None:
    config = RequestHeaderConfig(
        ca_certs=[FRONT_PROXY_CA.cert],
        username_headers=name_headers,
        uid_headers=uid_headers,
        group_headers=group_headers,
        extra_prefixes=extra_prefixes,
    )
    auth = RequestHeaderAuthenticator(lambda: config)
    assert await auth.authenticate(req(headers, PROXY_CERT)) == expected


SPOOF = [("X-Remote-User", "admin"), ("X-Remote-Group", "system:masters")]


@pytest.mark.parametrize(
    ("cert", "allowed", "outcome"),
    [
        pytest.param(None, (), None, id="no-cert"),
        pytest.param(PROXY_CERT, (), "admin", id="any-cn-when-unrestricted"),
        pytest.param(PROXY_CERT, ("front-proxy-client",), "admin", id="right-cn"),
        pytest.param(PROXY_CERT, ("foo", "bar"), "error", id="wrong-cn"),
        pytest.param(
            issue(CLIENT_CA, "front-proxy-client"), (), "error", id="client-ca-cert-is-not-a-proxy"
        ),
        pytest.param(issue(OTHER_CA, "front-proxy-client"), (), "error", id="unknown-ca"),
        pytest.param(
            issue(
                FRONT_PROXY_CA, "front-proxy-client", not_after=NOW - datetime.timedelta(minutes=1)
            ),
            (),
            "error",
            id="expired",
        ),
        pytest.param(
            issue(
                FRONT_PROXY_CA, "front-proxy-client", not_before=NOW + DAY, not_after=NOW + 2 * DAY
            ),
            (),
            "error",
            id="future",
        ),
        pytest.param(
            issue(FRONT_PROXY_CA, "front-proxy-client", eku=(ExtendedKeyUsageOID.SERVER_AUTH,)),
            (),
            "error",
            id="server-only-eku",
        ),
        pytest.param(
            issue(
                FRONT_PROXY_CA,
                "front-proxy-client",
                eku=(ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH),
            ),
            (),
            "admin",
            id="server-and-client-eku",
        ),
        pytest.param(
            issue(FRONT_PROXY_CA, "front-proxy-client", eku=None),
            (),
            "admin",
            id="no-eku-extension",
        ),
        pytest.param(
            issue(
                FRONT_PROXY_CA,
                "front-proxy-client",
                eku=(ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,),
            ),
            (),
            "admin",
            id="any-eku",
        ),
    ],
)
async def test_request_header_verifier(
    cert: Issued | None, allowed: tuple[str, ...], outcome: str | None
) -> None:
    """TestX509Verifier: headers count only behind a verified front-proxy certificate."""
    config = RequestHeaderConfig(ca_certs=[FRONT_PROXY_CA.cert], allowed_names=allowed)
    auth = RequestHeaderAuthenticator(lambda: config)
    if outcome == "error":
        with pytest.raises(AuthenticationFailed):
            await auth.authenticate(req(SPOOF, cert))
        return
    user = await auth.authenticate(req(SPOOF, cert))
    assert (user.name if user else None) == outcome


async def test_request_header_without_config_or_ca_has_no_opinion() -> None:
    assert (
        await RequestHeaderAuthenticator(lambda: None).authenticate(req(SPOOF, PROXY_CERT)) is None
    )
    empty = RequestHeaderConfig(ca_certs=[])
    assert (
        await RequestHeaderAuthenticator(lambda: empty).authenticate(req(SPOOF, PROXY_CERT)) is None
    )


async def test_request_header_wrong_cn_message() -> None:
    config = RequestHeaderConfig(ca_certs=[FRONT_PROXY_CA.cert], allowed_names=("foo",))
    with pytest.raises(
        AuthenticationFailed,
        match=r"x509: subject with cn=front-proxy-client is not in the allowed list",
    ):
        await RequestHeaderAuthenticator(lambda: config).authenticate(req(SPOOF, PROXY_CERT))


async def test_request_header_config_is_read_per_request() -> None:
    configs: list[RequestHeaderConfig | None] = [None]
    auth = RequestHeaderAuthenticator(lambda: configs[0])
    assert await auth.authenticate(req(SPOOF, PROXY_CERT)) is None
    configs[0] = RequestHeaderConfig(ca_certs=[FRONT_PROXY_CA.cert])
    assert await auth.authenticate(req(SPOOF, PROXY_CERT)) == UserInfo(
        "admin", groups=("system:masters",)
    )


# --- TestX509 ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cert", "expected"),
    [
        pytest.param(None, None, id="no-cert"),
        pytest.param(issue(CLIENT_CA, "client_cn"), UserInfo("client_cn"), id="client-cert"),
        pytest.param(
            issue(CLIENT_CA, "client_cn", ("group1", "group2")),
            UserInfo("client_cn", groups=("group1", "group2")),
            id="multiple-organizations",
        ),
        pytest.param(issue(CLIENT_CA, ""), None, id="empty-cn-no-opinion"),
        pytest.param(issue(CLIENT_CA, "client_cn", eku=None), UserInfo("client_cn"), id="no-eku"),
        pytest.param(
            issue(CLIENT_CA, "server", eku=(ExtendedKeyUsageOID.SERVER_AUTH,)),
            "error",
            id="server-cert",
        ),
        pytest.param(
            issue(
                CLIENT_CA,
                "server",
                eku=(ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH),
            ),
            UserInfo("server"),
            id="server-cert-allowing-client",
        ),
        pytest.param(issue(OTHER_CA, "client_cn"), "error", id="self-signed-or-unknown-ca"),
        pytest.param(
            issue(FRONT_PROXY_CA, "client_cn"), "error", id="front-proxy-ca-is-not-client-ca"
        ),
        pytest.param(
            issue(CLIENT_CA, "client_cn", not_before=NOW + DAY, not_after=NOW + 2 * DAY),
            "error",
            id="future-cert",
        ),
        pytest.param(
            issue(CLIENT_CA, "client_cn", not_after=NOW - datetime.timedelta(seconds=1)),
            "error",
            id="expired-cert",
        ),
    ],
)
async def test_x509(cert: Issued | None, expected: UserInfo | str | None) -> None:
    auth = ClientCertAuthenticator(lambda: [CLIENT_CA.cert])
    if expected == "error":
        with pytest.raises(AuthenticationFailed, match="verifying certificate SN="):
            await auth.authenticate(req(cert=cert))
        return
    user = await auth.authenticate(req(cert=cert))
    if expected is None or cert is None:
        assert user is None
        return
    assert isinstance(expected, UserInfo)
    assert user == UserInfo(
        expected.name,
        groups=expected.groups,
        extra={CREDENTIAL_ID_KEY: (credential_id(cert.cert),)},
    )


async def test_x509_credential_id_is_sha256_of_der() -> None:
    cert = issue(CLIENT_CA, "c")
    user = await ClientCertAuthenticator(lambda: [CLIENT_CA.cert]).authenticate(req(cert=cert))
    assert user is not None
    assert user.extra[CREDENTIAL_ID_KEY] == ("X509SHA256=" + hashlib.sha256(cert.der).hexdigest(),)


async def test_x509_without_ca_has_no_opinion() -> None:
    assert (
        await ClientCertAuthenticator(lambda: []).authenticate(req(cert=issue(CLIENT_CA, "c")))
        is None
    )


def test_verifier_expired_ca_rejected() -> None:
    ca = make_ca("short-lived", not_after=NOW - datetime.timedelta(seconds=1))
    leaf = issue(ca, "c")
    with pytest.raises(CertificateRejected, match="expired"):
        ClientCertVerifier(lambda: [ca.cert]).verify(leaf.der)


def test_verifier_ca_eku_constrains_chain() -> None:
    ca = make_ca("server-only-ca", eku=(ExtendedKeyUsageOID.SERVER_AUTH,))
    with pytest.raises(CertificateRejected, match="incompatible key usage"):
        ClientCertVerifier(lambda: [ca.cert]).verify(issue(ca, "c").der)


def test_verifier_same_subject_other_key_rejected() -> None:
    impostor = make_ca("client-ca")  # same name, different key
    with pytest.raises(CertificateRejected, match="unknown authority"):
        ClientCertVerifier(lambda: [CLIENT_CA.cert]).verify(issue(impostor, "c").der)


def test_verifier_picks_issuer_among_bundles_and_rejects_garbage() -> None:
    verifier = ClientCertVerifier(lambda: [OTHER_CA.cert, CLIENT_CA.cert])
    assert verifier.verify(issue(CLIENT_CA, "c").der).issuer == CLIENT_CA.cert
    with pytest.raises(CertificateRejected, match="malformed"):
        verifier.verify(b"not a certificate")


def test_verifier_remembers_a_good_certificate_only_while_the_outcome_holds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    checks: list[str] = []
    real = certificates._issued_by

    def counting(leaf: x509.Certificate, ca: x509.Certificate) -> bool:
        checks.append("signature")
        return real(leaf, ca)

    monkeypatch.setattr(certificates, "_issued_by", counting)
    cas = [CLIENT_CA.cert]
    now = [NOW]
    leaf = issue(CLIENT_CA, "c", not_after=NOW + datetime.timedelta(hours=1))
    verifier = ClientCertVerifier(lambda: cas, clock=lambda: now[0])
    first = verifier.verify(leaf.der)
    assert verifier.verify(leaf.der) is first and len(checks) == 1  # cached
    assert first.common_name == "c"
    now[0] = NOW + datetime.timedelta(hours=2)  # the leaf has expired
    with pytest.raises(CertificateRejected, match="expired"):
        verifier.verify(leaf.der)
    now[0] = NOW
    cas[:] = [OTHER_CA.cert]  # rotated away from the issuing CA
    with pytest.raises(CertificateRejected, match="unknown authority"):
        verifier.verify(leaf.der)


def test_certificate_identifier() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("x"))
        .issuer_name(_name("x"))
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW - DAY)
        .not_valid_after(NOW + DAY)
        .add_extension(x509.SubjectKeyIdentifier(bytes([0xAB, 0xCD, 0xEF])), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier(bytes([0x12, 0x34, 0x56]), None, None), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    assert certificate_identifier(cert) == "SN=1, SKID=AB:CD:EF, AKID=12:34:56"
    bare = issue(CLIENT_CA, "c", serial=42).cert
    assert certificate_identifier(bare) == "SN=42, SKID=<none>, AKID=<none>"


# --- union (unionauth_test.go) -----------------------------------------------------------------


@dataclass
class Fake:
    user: UserInfo | None = None
    error: str | None = None
    calls: int = 0

    async def authenticate(self, request: AuthRequest) -> UserInfo | None:
        self.calls += 1
        if self.error is not None:
            raise AuthenticationFailed(self.error)
        return self.user


async def test_union_first_passes() -> None:
    first, second = Fake(UserInfo("fresh_ca")), Fake(UserInfo("elder"))
    assert await UnionAuthenticator(first, second).authenticate(req()) == UserInfo("fresh_ca")
    assert second.calls == 0


async def test_union_second_passes() -> None:
    assert await UnionAuthenticator(Fake(), Fake(UserInfo("elder"))).authenticate(
        req()
    ) == UserInfo("elder")


async def test_union_suppresses_unnecessary_errors() -> None:
    union = UnionAuthenticator(Fake(error="first"), Fake(UserInfo("elder")))
    assert await union.authenticate(req()) == UserInfo("elder")


async def test_union_no_authenticators_and_none_pass() -> None:
    assert await UnionAuthenticator().authenticate(req()) is None
    assert await UnionAuthenticator(Fake(), Fake()).authenticate(req()) is None


async def test_union_additive_errors() -> None:
    with pytest.raises(AuthenticationFailed) as info:
        await UnionAuthenticator(Fake(error="first"), Fake(error="second")).authenticate(req())
    assert info.value.errors == ("first", "second")
    assert str(info.value) == "[first, second]"


async def test_union_fail_early() -> None:
    second = Fake(UserInfo("elder"))
    with pytest.raises(AuthenticationFailed, match="first"):
        await UnionAuthenticator(Fake(error="first"), second, fail_on_error=True).authenticate(
            req()
        )
    assert second.calls == 0


@pytest.mark.parametrize(
    ("groups", "expected"),
    [
        pytest.param((), ("system:authenticated",), id="added"),
        pytest.param(("a",), ("a", "system:authenticated"), id="appended"),
        pytest.param(("system:authenticated", "a"), ("system:authenticated", "a"), id="present"),
        pytest.param(
            ("system:unauthenticated",), ("system:unauthenticated",), id="unauthenticated"
        ),
    ],
)
async def test_authenticated_group_adder(
    groups: tuple[str, ...], expected: tuple[str, ...]
) -> None:
    user = await AuthenticatedGroupAdder(Fake(UserInfo("u", groups=groups))).authenticate(req())
    assert user is not None and tuple(user.groups) == expected
    anon = await AuthenticatedGroupAdder(Fake(UserInfo("system:anonymous"))).authenticate(req())
    assert anon == UserInfo("system:anonymous")
    assert await AuthenticatedGroupAdder(Fake()).authenticate(req()) is None


# --- bearer tokens (bearertoken_test.go) -------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "token"),
    [
        pytest.param("Bearer token", "token", id="valid"),
        pytest.param("Bearer token extra", "token", id="trailing-value"),
        pytest.param("  Bearer token  ", "token", id="surrounding-space"),
        pytest.param("bearer token", "token", id="case-insensitive-scheme"),
        pytest.param("Bearer", None, id="no-token"),
        pytest.param("Bearer ", None, id="no-token-trailing-space"),
        pytest.param("Bearer  token", None, id="space-before-token"),
        pytest.param("bear token", None, id="wrong-scheme"),
        pytest.param("Bearer: token", None, id="colon"),
        pytest.param("Basic dXNlcjpwYXNz", None, id="basic"),
        pytest.param("", None, id="empty"),
        pytest.param(None, None, id="absent"),
    ],
)
def test_bearer_token(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


@dataclass
class FakeReviews:
    """An in-memory ReviewClient: tokens → users; counts calls; can fail or block."""

    users: Mapping[str, UserInfo] = field(default_factory=dict)
    fail: BaseException | None = None
    gate: asyncio.Event | None = None
    token_calls: list[str] = field(default_factory=list)
    status_error: str = ""
    answer_audiences: Sequence[str] = ()

    async def create_token_review(
        self, token: str, audiences: Sequence[str] = ()
    ) -> dict[str, Any]:
        self.token_calls.append(token)
        if self.gate is not None:
            await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        user = self.users.get(token)
        if user is None:
            return {"authenticated": False, "error": self.status_error}
        return {
            "authenticated": True,
            "audiences": list(self.answer_audiences),
            "user": {
                "username": user.name,
                "uid": user.uid,
                "groups": list(user.groups),
                "extra": {k: list(v) for k, v in user.extra.items()},
            },
        }

    async def create_subject_access_review(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        raise NotImplementedError


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def bearer(token: str) -> AuthRequest:
    return req([("Authorization", f"Bearer {token}")])


async def test_token_review_user_and_invalid_token() -> None:
    alice = UserInfo("alice", uid="1", groups=("devs",), extra={"scopes": ("a", "b")})
    auth = TokenReviewAuthenticator(FakeReviews({"good": alice}))
    assert await auth.authenticate(bearer("good")) == alice
    with pytest.raises(AuthenticationFailed, match="invalid bearer token"):
        await auth.authenticate(bearer("bad"))
    assert await auth.authenticate(req([("Authorization", "Bearer: good")])) is None
    assert await auth.authenticate(req()) is None


async def test_token_review_bad_headers_do_not_call_the_api() -> None:
    reviews = FakeReviews({"token": UserInfo("u")})
    auth = TokenReviewAuthenticator(reviews)
    for header in ("Bearer", "bear token", "Bearer: token"):
        assert await auth.authenticate(req([("Authorization", header)])) is None
    assert reviews.token_calls == []


async def test_token_cache_ttl_success_and_failure() -> None:
    clock = Clock()
    reviews = FakeReviews({"good": UserInfo("alice")})
    auth = TokenReviewAuthenticator(reviews, ttl=10, clock=clock)
    for _ in range(3):
        assert await auth.authenticate(bearer("good")) == UserInfo("alice")
        with pytest.raises(AuthenticationFailed):
            await auth.authenticate(bearer("bad"))
    assert reviews.token_calls == ["good", "bad"]
    clock.now += 9.9
    await auth.authenticate(bearer("good"))
    assert len(reviews.token_calls) == 2
    clock.now += 0.2
    await auth.authenticate(bearer("good"))
    with pytest.raises(AuthenticationFailed):
        await auth.authenticate(bearer("bad"))
    assert reviews.token_calls == ["good", "bad", "good", "bad"]


async def test_token_cache_does_not_cache_errors() -> None:
    reviews = FakeReviews(fail=KubeAPIError(0, "", "connection refused"))
    auth = TokenReviewAuthenticator(reviews)
    for _ in range(2):
        with pytest.raises(AuthenticationFailed, match="connection refused"):
            await auth.authenticate(bearer("t"))
    assert len(reviews.token_calls) == 2
    reviews2 = FakeReviews(status_error="webhook said no")
    auth2 = TokenReviewAuthenticator(reviews2)
    for _ in range(2):
        with pytest.raises(AuthenticationFailed, match="webhook said no"):
            await auth2.authenticate(bearer("t"))
    assert len(reviews2.token_calls) == 2


async def test_token_cache_keeps_no_token_in_clear() -> None:
    auth = TokenReviewAuthenticator(FakeReviews({"s3cret-token": UserInfo("a")}))
    await auth.authenticate(bearer("s3cret-token"))
    keys = list(auth._cache)
    assert len(keys) == 1 and b"s3cret-token" not in keys[0]
    # A per-instance (per-process) random key: another cache derives another key.
    other = TokenReviewAuthenticator(FakeReviews())
    assert other._key("s3cret-token") != auth._key("s3cret-token")


async def test_token_shared_lookup() -> None:
    gate = asyncio.Event()
    reviews = FakeReviews({"t": UserInfo("alice")}, gate=gate)
    auth = TokenReviewAuthenticator(reviews)
    tasks = [asyncio.create_task(auth.authenticate(bearer("t"))) for _ in range(20)]
    await asyncio.sleep(0.01)
    tasks[0].cancel()  # one caller giving up does not cancel the shared review
    gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(results[0], asyncio.CancelledError)
    assert all(r == UserInfo("alice") for r in results[1:])
    assert reviews.token_calls == ["t"]


async def test_token_review_timeout() -> None:
    reviews = FakeReviews({"t": UserInfo("a")}, gate=asyncio.Event())
    auth = TokenReviewAuthenticator(reviews, timeout=0.01)
    with pytest.raises(AuthenticationFailed, match="TokenReview failed"):
        await auth.authenticate(bearer("t"))


async def test_token_audiences() -> None:
    reviews = FakeReviews({"t": UserInfo("a")}, answer_audiences=("other",))
    with pytest.raises(AuthenticationFailed, match="invalid bearer token"):
        await TokenReviewAuthenticator(reviews, audiences=("mine",)).authenticate(bearer("t"))
    reviews = FakeReviews({"t": UserInfo("a")}, answer_audiences=("mine", "x"))
    assert await TokenReviewAuthenticator(reviews, audiences=("mine",)).authenticate(
        bearer("t")
    ) == UserInfo("a")


# --- the delegating chain ----------------------------------------------------------------------


def chain(reviews: FakeReviews | None = None, allowed: Sequence[str] = ()) -> Authenticator:
    config = RequestHeaderConfig(ca_certs=[FRONT_PROXY_CA.cert], allowed_names=allowed)
    return new_delegating_authenticator(
        RequestHeaderAuthenticator(lambda: config),
        ClientCertAuthenticator(lambda: [CLIENT_CA.cert]),
        TokenReviewAuthenticator(reviews or FakeReviews({"tok": UserInfo("bob")})),
    )


async def test_delegating_chain() -> None:
    auth = chain()
    user = await auth.authenticate(req([*SPOOF, ("X-Remote-Group", "x")], PROXY_CERT))
    assert user == UserInfo("admin", groups=("system:masters", "x", "system:authenticated"))
    # A client-CA cert: the headers are ignored, the cert's CN is the user.
    user = await auth.authenticate(req(SPOOF, issue(CLIENT_CA, "carol", ("team",))))
    assert (
        user is not None
        and user.name == "carol"
        and tuple(user.groups) == ("team", "system:authenticated")
    )
    # No credentials: no opinion (the middleware makes it anonymous).
    assert await auth.authenticate(req(SPOOF)) is None
    # A token alongside a rejected certificate still authenticates (the union keeps trying).
    user = await auth.authenticate(req([("Authorization", "Bearer tok")], issue(OTHER_CA, "x")))
    assert user == UserInfo("bob", groups=("system:authenticated",))
    # A front-proxy cert with a disallowed CN fails both cert authenticators.
    with pytest.raises(AuthenticationFailed) as info:
        await chain(allowed=("front-proxy-client-2",)).authenticate(req(SPOOF, PROXY_CERT))
    assert len(info.value.errors) == 2
