"""The delegated authenticator chain of k8s.io/apiserver (authenticatorfactory/delegating.go).

Order: front-proxy request headers (only from a certificate of the request-header CA with an
allowed CN), then client certificates of the client CA, then bearer tokens via TokenReview. The
union keeps trying after an error and fails only if nobody authenticated the request; every
authenticated user gets `system:authenticated`.
"""

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from cryptography import x509

from adapter.auth.certificates import (
    CertificateRejected,
    ClientCertVerifier,
    certificate_identifier,
    credential_id,
)
from adapter.auth.credentials import AuthenticationFailed, Authenticator, AuthRequest
from adapter.auth.token_review import TokenReviewAuthenticator
from adapter.auth.user import (
    ALL_AUTHENTICATED,
    ALL_UNAUTHENTICATED,
    ANONYMOUS_USER,
    CREDENTIAL_ID_KEY,
    UserInfo,
)

__all__ = [
    "AuthenticatedGroupAdder",
    "ClientCertAuthenticator",
    "RequestHeaderAuthenticator",
    "RequestHeaderConfig",
    "TokenReviewAuthenticator",
    "UnionAuthenticator",
    "new_delegating_authenticator",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RequestHeaderConfig:
    """The front-proxy settings (ConfigMap `extension-apiserver-authentication` or flags)."""

    ca_certs: Sequence[x509.Certificate]
    allowed_names: Sequence[str] = ()
    username_headers: Sequence[str] = ("X-Remote-User",)
    group_headers: Sequence[str] = ("X-Remote-Group",)
    extra_prefixes: Sequence[str] = ("X-Remote-Extra-",)
    # Not defaulted, as upstream: old front proxies did not strip X-Remote-Uid.
    uid_headers: Sequence[str] = ()


def _first_value(request: AuthRequest, names: Sequence[str]) -> str:
    # Go's Header.Get: the first value of the first header that has a non-empty one.
    for name in names:
        value = request.headers.get(name, "")
        if value:
            return value
    return ""


def _all_values(request: AuthRequest, names: Sequence[str]) -> list[str]:
    return [value for name in names for value in request.headers.getall(name, ()) if value]


def _unescape_extra_key(key: str) -> str:
    # url.PathUnescape, keeping the raw key when the escaping is malformed.
    try:
        if any(ch == "%" and not _is_hex_pair(key[i + 1 : i + 3]) for i, ch in enumerate(key)):
            return key
        return unquote_to_bytes(key).decode("utf-8", "replace")
    except UnicodeDecodeError:
        return key


def _is_hex_pair(text: str) -> bool:
    return len(text) == 2 and all(c in "0123456789abcdefABCDEF" for c in text)


def _extra(request: AuthRequest, prefixes: Sequence[str]) -> dict[str, list[str]]:
    extra: dict[str, list[str]] = {}
    # Prefixes first, so values of one key keep the prefix order.
    for prefix in prefixes:
        lowered = prefix.lower()
        for name, value in request.headers.items():
            if name.lower().startswith(lowered):
                key = _unescape_extra_key(name[len(prefix) :].lower())
                extra.setdefault(key, []).append(value)
    return extra


class RequestHeaderAuthenticator:
    """Trusts `X-Remote-*` headers only on a request whose client certificate was issued by the
    request-header CA, allows client auth, and has an allowed CN (any CN if none configured)."""

    def __init__(self, config: Callable[[], RequestHeaderConfig | None]) -> None:
        self._config = config
        self._verifier = ClientCertVerifier(self._ca_certs)

    def _ca_certs(self) -> Sequence[x509.Certificate]:
        config = self._config()
        return config.ca_certs if config is not None else ()

    async def authenticate(self, request: AuthRequest) -> UserInfo | None:
        if request.peer_certificate is None:
            return None
        config = self._config()
        if config is None or not config.ca_certs:
            return None  # no CA loaded yet: no opinion, as upstream
        try:
            verified = self._verifier.verify(request.peer_certificate)
        except CertificateRejected as exc:
            raise AuthenticationFailed(exc.reason) from None
        if config.allowed_names:
            cn = verified.common_name
            if cn not in config.allowed_names:
                raise AuthenticationFailed(f"x509: subject with cn={cn} is not in the allowed list")
        name = _first_value(request, config.username_headers)
        if not name:
            return None
        return UserInfo(
            name=name,
            uid=_first_value(request, config.uid_headers),
            groups=_all_values(request, config.group_headers),
            extra=_extra(request, config.extra_prefixes),
        )


class ClientCertAuthenticator:
    """Users from client certificates of the client CA: CN → name, O → groups."""

    def __init__(self, ca_certs: Callable[[], Sequence[x509.Certificate]]) -> None:
        self._verifier = ClientCertVerifier(ca_certs)

    async def authenticate(self, request: AuthRequest) -> UserInfo | None:
        if request.peer_certificate is None or not self._verifier.has_cas():
            return None
        try:
            verified = self._verifier.verify(request.peer_certificate)
        except CertificateRejected as exc:
            ident = _identifier(request.peer_certificate)
            raise AuthenticationFailed(
                f"verifying certificate {ident} failed: {exc.reason}"
            ) from None
        if not verified.common_name:
            return None
        return UserInfo(
            name=verified.common_name,
            groups=verified.organizations,
            extra={CREDENTIAL_ID_KEY: (credential_id(verified.certificate),)},
        )


def _identifier(der: bytes) -> str:
    try:
        return certificate_identifier(x509.load_der_x509_certificate(der))
    except ValueError:
        return "<unparsable>"


class UnionAuthenticator:
    """Tries each authenticator in order; the first user wins.

    Without `fail_on_error` an error does not stop the chain: it is reported (aggregated) only
    if no authenticator succeeded. With it, the first error is final (`NewFailOnError`)."""

    def __init__(self, *authenticators: Authenticator, fail_on_error: bool = False) -> None:
        self._authenticators = authenticators
        self._fail_on_error = fail_on_error

    async def authenticate(self, request: AuthRequest) -> UserInfo | None:
        errors: list[str] = []
        for authenticator in self._authenticators:
            try:
                user = await authenticator.authenticate(request)
            except AuthenticationFailed as exc:
                if self._fail_on_error:
                    raise
                errors.extend(exc.errors)
                continue
            if user is not None:
                return user
        if errors:
            raise AuthenticationFailed(errors)
        return None


class AuthenticatedGroupAdder:
    """Adds `system:authenticated` to every authenticated (non-anonymous) user."""

    def __init__(self, authenticator: Authenticator) -> None:
        self._authenticator = authenticator

    async def authenticate(self, request: AuthRequest) -> UserInfo | None:
        user = await self._authenticator.authenticate(request)
        if user is None or user.name == ANONYMOUS_USER:
            return user
        if ALL_AUTHENTICATED in user.groups or ALL_UNAUTHENTICATED in user.groups:
            return user
        return user.with_group(ALL_AUTHENTICATED)


def new_delegating_authenticator(
    request_header: RequestHeaderAuthenticator | None = None,
    client_cert: ClientCertAuthenticator | None = None,
    token: TokenReviewAuthenticator | None = None,
) -> Authenticator:
    """The chain of `DelegatingAuthenticatorConfig.New`, without the anonymous fallback (the
    authentication middleware applies it, with FailOnError semantics)."""
    chain: list[Authenticator] = [a for a in (request_header, client_cert, token) if a is not None]
    return AuthenticatedGroupAdder(UnionAuthenticator(*chain))
