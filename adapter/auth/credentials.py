"""What an authenticator sees of a request, and the authenticator protocol.

Authenticators work on `AuthRequest` (headers and the verified peer certificate) rather than on
an aiohttp request, so they are pure enough to test with tables and never touch the transport.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy, MultiMapping

from adapter.auth.user import UserInfo

__all__ = [
    "AuthRequest",
    "AuthenticationFailed",
    "Authenticator",
    "peer_certificate",
]


class AuthenticationFailed(Exception):
    """A presented credential was checked and rejected (or could not be checked): the request
    must get a 401, not fall through to anonymous. The message may be logged; it never contains
    the credential itself."""

    def __init__(self, errors: str | Sequence[str]) -> None:
        self.errors: tuple[str, ...] = (errors,) if isinstance(errors, str) else tuple(errors)
        # utilerrors.NewAggregate formatting: one error as is, several as "[a, b]".
        message = self.errors[0] if len(self.errors) == 1 else "[" + ", ".join(self.errors) + "]"
        super().__init__(message)


def peer_certificate(request: web.BaseRequest) -> bytes | None:
    """The DER of the client certificate the TLS handshake verified, or None."""
    transport = request.transport
    if transport is None:
        return None
    ssl_object = transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    return der if isinstance(der, bytes) and der else None


@dataclass(frozen=True, slots=True)
class AuthRequest:
    """The credentials of a request: its headers and its verified peer certificate (DER)."""

    headers: MultiMapping[str]
    peer_certificate: bytes | None = None

    @classmethod
    def from_web_request(cls, request: web.BaseRequest) -> "AuthRequest":
        return cls(request.headers, peer_certificate(request))

    @classmethod
    def of(
        cls, headers: Sequence[tuple[str, str]] = (), peer_certificate: bytes | None = None
    ) -> "AuthRequest":
        """Built from header pairs (tests, tools)."""
        return cls(CIMultiDictProxy(CIMultiDict(headers)), peer_certificate)


class Authenticator(Protocol):
    async def authenticate(self, request: AuthRequest) -> UserInfo | None:
        """The user, or None for "no opinion" (no credential of this kind); raises
        AuthenticationFailed when a credential was presented and failed."""
        ...
