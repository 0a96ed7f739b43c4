"""The authentication and authorization middlewares, over real TLS on 127.0.0.1.

The listener is set up as the adapter's will be: `CERT_OPTIONAL` with both the client CA and the
front-proxy CA loaded, so the handshake accepts certificates of either CA and the middlewares
must tell them apart. A certificate of an unknown CA (or an expired one) already fails the
handshake in Python's ssl, where Go would answer 401: both count as "not authenticated".
"""

import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from adapter.auth.authenticators import (
    ClientCertAuthenticator,
    RequestHeaderAuthenticator,
    RequestHeaderConfig,
    TokenReviewAuthenticator,
    new_delegating_authenticator,
)
from adapter.auth.authorizers import (
    AlwaysAllowGroups,
    AlwaysAllowPaths,
    SubjectAccessReviewAuthorizer,
    UnionAuthorizer,
)
from adapter.auth.middleware import (
    USER_KEY,
    authentication_middleware,
    authorization_middleware,
    forbidden_error,
    request_info_of,
)
from adapter.auth.request_info import RequestInfo, new_request_info
from adapter.auth.user import UserInfo
from adapter.kube.api import KubeAPIError

NOW = datetime.datetime.now(datetime.UTC)
DAY = datetime.timedelta(days=1)
CM = "/apis/custom.metrics.k8s.io/v1beta2"
POD_METRIC = CM + "/namespaces/default/pods/*/http_requests"

# --- PKI ---------------------------------------------------------------------------------------


@dataclass
class Issued:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    def write(self, directory: Path, stem: str) -> tuple[str, str]:
        crt, key = directory / f"{stem}.crt", directory / f"{stem}.key"
        crt.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        key.write_bytes(
            self.key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return str(crt), str(key)

    @property
    def pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()


def _name(cn: str, orgs: Sequence[str] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    return x509.Name([*attrs, x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca(cn: str) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - DAY)
        .not_valid_after(NOW + DAY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return Issued(cert, key)


def issue(
    ca: Issued,
    cn: str,
    orgs: Sequence[str] = (),
    *,
    server: bool = False,
    not_after: datetime.datetime = NOW + DAY,
) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn, orgs))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - DAY)
        .not_valid_after(not_after)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
    return Issued(builder.sign(ca.key, hashes.SHA256()), key)


SERVING_CA = make_ca("serving-ca")
CLIENT_CA = make_ca("client-ca")
FRONT_PROXY_CA = make_ca("front-proxy-ca")
OTHER_CA = make_ca("other-ca")
PROXY_CERT = issue(FRONT_PROXY_CA, "front-proxy-client")
REQUEST_HEADER_CONFIG = RequestHeaderConfig(
    ca_certs=[FRONT_PROXY_CA.cert],
    allowed_names=("front-proxy-client",),
    username_headers=("X-Remote-User", "X-Custom-User"),
)

# --- fakes and the server ----------------------------------------------------------------------


@dataclass
class FakeReviews:
    tokens: Mapping[str, UserInfo] = field(default_factory=dict)
    allowed_users: set[str] = field(default_factory=set)
    token_error: BaseException | None = None
    sar_error: BaseException | None = None
    specs: list[Mapping[str, Any]] = field(default_factory=list)

    async def create_token_review(
        self, token: str, audiences: Sequence[str] = ()
    ) -> dict[str, Any]:
        if self.token_error is not None:
            raise self.token_error
        user = self.tokens.get(token)
        if user is None:
            return {"authenticated": False}
        return {"authenticated": True, "user": {"username": user.name, "groups": list(user.groups)}}

    async def create_subject_access_review(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        self.specs.append(spec)
        if self.sar_error is not None:
            raise self.sar_error
        return {"allowed": spec.get("user") in self.allowed_users}


async def echo(request: web.Request) -> web.Response:
    user = request[USER_KEY]
    return web.json_response(
        {
            "user": user.name,
            "groups": list(user.groups),
            "headers": [h.lower() for h in request.headers],
        }
    )


def build_app(reviews: FakeReviews, *, anonymous_allowed: bool = True) -> web.Application:
    authenticator = new_delegating_authenticator(
        RequestHeaderAuthenticator(lambda: REQUEST_HEADER_CONFIG),
        ClientCertAuthenticator(lambda: [CLIENT_CA.cert]),
        TokenReviewAuthenticator(reviews),
    )
    authorizer = UnionAuthorizer(
        AlwaysAllowGroups(),
        AlwaysAllowPaths(["/healthz", "/readyz", "/livez"]),
        SubjectAccessReviewAuthorizer(reviews),
    )
    app = web.Application(
        middlewares=[
            authentication_middleware(
                authenticator,
                anonymous_allowed=anonymous_allowed,
                request_header_config=lambda: REQUEST_HEADER_CONFIG,
            ),
            authorization_middleware(authorizer),
        ]
    )
    app.router.add_get("/{tail:.*}", echo)
    return app


@pytest.fixture
def pki_dir(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
async def server(pki_dir: Path) -> AsyncIterator[Callable[[FakeReviews], Any]]:
    runners: list[web.AppRunner] = []

    async def start(reviews: FakeReviews, **kwargs: Any) -> str:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(*issue(SERVING_CA, "localhost", server=True).write(pki_dir, "serving"))
        ctx.verify_mode = ssl.CERT_OPTIONAL
        ctx.load_verify_locations(cadata=CLIENT_CA.pem)
        ctx.load_verify_locations(cadata=FRONT_PROXY_CA.pem)
        runner = web.AppRunner(build_app(reviews, **kwargs))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        return f"https://127.0.0.1:{port}"

    yield start
    for runner in runners:
        await runner.cleanup()


async def call(
    base: str,
    path: str,
    pki_dir: Path,
    *,
    cert: Issued | None = None,
    headers: Sequence[tuple[str, str]] = (),
) -> tuple[int, str, Any]:
    ctx = ssl.create_default_context(cafile=None)
    ctx.load_verify_locations(cadata=SERVING_CA.pem)
    if cert is not None:
        ctx.load_cert_chain(*cert.write(pki_dir, "client"))
    async with (
        aiohttp.ClientSession() as session,
        session.get(base + path, ssl=ctx, headers=list(headers)) as response,
    ):
        text = await response.text()
        body = await response.json() if response.content_type == "application/json" else text
        return response.status, response.content_type, body


SPOOF = [("X-Remote-User", "admin"), ("X-Remote-Group", "system:masters")]
HANDSHAKE_FAILURES = (aiohttp.ClientConnectionError, ssl.SSLError, ConnectionError)

# --- spoofing ----------------------------------------------------------------------------------


async def test_spoofed_headers_without_cert_are_anonymous(server: Any, pki_dir: Path) -> None:
    reviews = FakeReviews()
    base = await server(reviews)
    status, _, body = await call(base, POD_METRIC, pki_dir, headers=SPOOF)
    assert status == 403
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'pods.custom.metrics.k8s.io "*" is forbidden: User "system:anonymous" cannot get resource "pods/http_requests" in API group "custom.metrics.k8s.io" in the namespace "default"',
        "reason": "Forbidden",
        "details": {"name": "*", "group": "custom.metrics.k8s.io", "kind": "pods"},
        "code": 403,
    }
    assert reviews.specs[0]["user"] == "system:anonymous"
    assert reviews.specs[0]["groups"] == ["system:unauthenticated"]


async def test_spoofed_headers_with_client_ca_cert_are_the_cert_user(
    server: Any, pki_dir: Path
) -> None:
    reviews = FakeReviews(allowed_users={"carol"})
    base = await server(reviews)
    cert = issue(CLIENT_CA, "carol", ("team",))
    status, _, body = await call(
        base, POD_METRIC, pki_dir, cert=cert, headers=[*SPOOF, ("X-Remote-Extra-Scopes", "x")]
    )
    assert status == 200
    assert body["user"] == "carol"
    assert body["groups"] == ["team", "system:authenticated"]
    assert not [h for h in body["headers"] if h.startswith("x-remote")]
    # Even a client-CA cert named like the front proxy does not unlock the headers.
    status, _, _ = await call(
        base, POD_METRIC, pki_dir, cert=issue(CLIENT_CA, "front-proxy-client"), headers=SPOOF
    )
    assert status == 403


async def test_unknown_ca_cert_is_rejected(server: Any, pki_dir: Path) -> None:
    base = await server(FakeReviews(allowed_users={"admin"}))
    try:
        status, _, _ = await call(
            base, POD_METRIC, pki_dir, cert=issue(OTHER_CA, "front-proxy-client"), headers=SPOOF
        )
    except HANDSHAKE_FAILURES:
        return  # Python's ssl fails the handshake (Go would answer 401)
    assert status == 401


async def test_front_proxy_cert_with_disallowed_cn_is_401(server: Any, pki_dir: Path) -> None:
    base = await server(FakeReviews(allowed_users={"admin"}))
    status, _, body = await call(
        base, POD_METRIC, pki_dir, cert=issue(FRONT_PROXY_CA, "someone-else"), headers=SPOOF
    )
    assert status == 401
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    }


async def test_expired_front_proxy_cert_is_rejected(server: Any, pki_dir: Path) -> None:
    base = await server(FakeReviews(allowed_users={"admin"}))
    expired = issue(
        FRONT_PROXY_CA, "front-proxy-client", not_after=NOW - datetime.timedelta(minutes=1)
    )
    try:
        status, _, _ = await call(base, POD_METRIC, pki_dir, cert=expired, headers=SPOOF)
    except HANDSHAKE_FAILURES:
        return  # OpenSSL checks validity in the handshake
    assert status == 401


# --- the aggregator ----------------------------------------------------------------------------


async def test_aggregator_is_allowed_without_sar_and_headers_are_stripped(
    server: Any, pki_dir: Path
) -> None:
    reviews = FakeReviews()
    base = await server(reviews)
    headers = [
        ("X-Remote-User", "system:kube-aggregator"),
        ("X-Remote-Group", "system:masters"),
        ("X-Remote-Extra-Foo", "bar"),
        ("X-Remote-Uid", "spoofed"),
        ("X-Custom-User", "other"),
        ("Authorization", "Bearer leaked"),
    ]
    status, _, body = await call(base, CM, pki_dir, cert=PROXY_CERT, headers=headers)
    assert status == 200
    assert body["user"] == "system:kube-aggregator"
    assert body["groups"] == ["system:masters", "system:authenticated"]
    assert not {"authorization", "x-custom-user"} & set(body["headers"])
    assert not [h for h in body["headers"] if h.startswith("x-remote")]
    assert reviews.specs == []


async def test_discovery_fallback_without_group_asks_sar(server: Any, pki_dir: Path) -> None:
    reviews = FakeReviews(allowed_users={"system:kube-aggregator"})
    base = await server(reviews)
    status, _, _ = await call(
        base, CM, pki_dir, cert=PROXY_CERT, headers=[("X-Remote-User", "system:kube-aggregator")]
    )
    assert status == 200
    assert reviews.specs == [
        {
            "user": "system:kube-aggregator",
            "groups": ["system:authenticated"],
            "nonResourceAttributes": {"path": CM, "verb": "get"},
        }
    ]


# --- tokens ------------------------------------------------------------------------------------


async def test_bearer_token(server: Any, pki_dir: Path) -> None:
    reviews = FakeReviews(tokens={"good": UserInfo("bob", groups=("g",))}, allowed_users={"bob"})
    base = await server(reviews)
    status, _, body = await call(
        base, POD_METRIC, pki_dir, headers=[("Authorization", "Bearer good"), *SPOOF]
    )
    assert status == 200
    assert body["user"] == "bob" and body["groups"] == ["g", "system:authenticated"]
    assert "authorization" not in body["headers"]
    status, _, body = await call(
        base, POD_METRIC, pki_dir, headers=[("Authorization", "Bearer bad")]
    )
    assert (status, body["message"]) == (401, "Unauthorized")


async def test_token_review_failure_is_401(server: Any, pki_dir: Path) -> None:
    base = await server(FakeReviews(token_error=KubeAPIError(0, "", "connection refused")))
    status, _, body = await call(base, POD_METRIC, pki_dir, headers=[("Authorization", "Bearer t")])
    assert (status, body["reason"]) == (401, "Unauthorized")


async def test_sar_failure_is_plain_500(server: Any, pki_dir: Path) -> None:
    base = await server(FakeReviews(sar_error=KubeAPIError(503, "ServiceUnavailable", "down")))
    status, content_type, body = await call(base, POD_METRIC + "?labelSelector=a%3Db", pki_dir)
    assert (status, content_type) == (500, "text/plain")
    assert (
        body
        == f'Internal Server Error: "{POD_METRIC}?labelSelector=a%3Db": 503 ServiceUnavailable: down\n'
    )


async def test_always_allowed_paths_and_forbidden_path(server: Any, pki_dir: Path) -> None:
    reviews = FakeReviews()
    base = await server(reviews)
    status, _, body = await call(base, "/healthz", pki_dir)
    assert (status, body["user"]) == (200, "system:anonymous")
    status, _, body = await call(base, "/metrics", pki_dir)
    assert status == 403
    assert body["message"] == 'forbidden: User "system:anonymous" cannot get path "/metrics"'
    assert body["details"] == {}


async def test_anonymous_not_allowed(server: Any, pki_dir: Path) -> None:
    base = await server(FakeReviews(), anonymous_allowed=False)
    status, _, _ = await call(base, "/healthz", pki_dir)
    assert status == 401
    status, _, _ = await call(
        base, "/healthz", pki_dir, cert=PROXY_CERT, headers=[("X-Remote-User", "x")]
    )
    assert status == 200


# --- pieces ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "info", "reason", "message", "details"),
    [
        pytest.param(
            "bob",
            new_request_info("GET", "/apis/external.metrics.k8s.io/v1beta1/namespaces/ns/m"),
            "",
            'm.external.metrics.k8s.io is forbidden: User "bob" cannot list resource "m" in API group "external.metrics.k8s.io" in the namespace "ns"',
            {"group": "external.metrics.k8s.io", "kind": "m"},
            id="external-list",
        ),
        pytest.param(
            "bob",
            new_request_info("GET", CM + "/nodes/n1/cpu"),
            "no RBAC",
            'nodes.custom.metrics.k8s.io "n1" is forbidden: User "bob" cannot get resource "nodes/cpu" in API group "custom.metrics.k8s.io" at the cluster scope: no RBAC',
            {"name": "n1", "group": "custom.metrics.k8s.io", "kind": "nodes"},
            id="cluster-scope-reason",
        ),
        pytest.param(
            "bob",
            new_request_info("GET", "/api/v1/namespaces/x/pods"),
            "",
            'pods is forbidden: User "bob" cannot list resource "pods" in API group "" in the namespace "x"',
            {"kind": "pods"},
            id="core-group",
        ),
        pytest.param(
            "<b>&",
            RequestInfo(is_resource_request=False, path="/a<b>", verb="get"),
            "",
            'forbidden: User "&lt;b&gt;&amp;" cannot get path "/a&lt;b&gt;"',
            {},
            id="sanitized",
        ),
    ],
)
def test_forbidden_message(
    user: str, info: RequestInfo, reason: str, message: str, details: dict[str, str]
) -> None:
    error = forbidden_error(UserInfo(user), info, reason)
    assert error.message == message
    assert error.status()["details"] == details
    assert error.code == 403


async def test_authorization_without_user_is_500(aiohttp_client: Any) -> None:
    app = web.Application(middlewares=[authorization_middleware(AlwaysAllowGroups())])
    app.router.add_get("/x", echo)
    client = await aiohttp_client(app)
    response = await client.get("/x")
    assert response.status == 500
    assert await response.text() == 'Internal Server Error: "/x": no user found for request\n'


def test_request_info_of_is_cached() -> None:
    request = make_mocked_request("GET", CM + "/namespaces/d/metrics/m?watch=1")
    info = request_info_of(request)
    assert (info.resource, info.name, info.verb) == ("metrics", "m", "get")
    assert request_info_of(request) is info
