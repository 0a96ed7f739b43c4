"""Bearer tokens checked with a TokenReview, behind k8s's token cache.

Ports `pkg/authentication/request/bearertoken`, `plugin/pkg/authenticator/token/webhook` and
`pkg/authentication/token/cache`: the cache key is an HMAC of the token under a per-process
random key (tokens are never kept in clear), successes and failures are cached for the TTL
(`--authentication-token-webhook-cache-ttl`, 10 s), errors are not cached, and concurrent
lookups of one token share a single TokenReview.
"""

import asyncio
import hashlib
import hmac
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from adapter.auth.credentials import AuthenticationFailed, AuthRequest
from adapter.auth.review import ReviewClient
from adapter.auth.user import UserInfo

__all__ = ["TokenReviewAuthenticator", "bearer_token"]

log = logging.getLogger(__name__)

INVALID_BEARER_TOKEN = "invalid bearer token"


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header as k8s parses it, or None.

    The scheme is matched case-insensitively; anything after a second space is ignored;
    `Bearer`, `Bearer ` + space, `bear x` and `Bearer: x` carry no token."""
    if authorization is None:
        return None
    auth = authorization.strip()
    if not auth:
        return None
    parts = auth.split(" ", 2)
    if len(parts) < 2 or parts[0].lower() != "bearer":
        return None
    return parts[1] or None


@dataclass(frozen=True, slots=True)
class _Record:
    user: UserInfo | None
    error: str | None = None


def _user_from_status(status: Mapping[str, Any]) -> UserInfo:
    user = status.get("user") or {}
    extra = user.get("extra") or {}
    return UserInfo(
        name=str(user.get("username") or ""),
        uid=str(user.get("uid") or ""),
        groups=tuple(str(g) for g in user.get("groups") or ()),
        extra={str(k): tuple(str(v) for v in vs or ()) for k, vs in extra.items()},
    )


class TokenReviewAuthenticator:
    """Authenticates `Authorization: Bearer` tokens with TokenReview, cached for `ttl` seconds."""

    def __init__(
        self,
        client: ReviewClient,
        ttl: float = 10.0,
        audiences: Sequence[str] = (),
        *,
        timeout: float = 10.0,
        max_entries: int = 8192,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._ttl = ttl
        self._audiences = tuple(audiences)
        self._timeout = timeout
        self._max_entries = max_entries
        self._clock = clock
        # Per process, never persisted: the cache cannot be used to test guessed tokens offline.
        self._hmac_key = secrets.token_bytes(32)
        self._cache: OrderedDict[bytes, tuple[float, _Record]] = OrderedDict()
        self._inflight: dict[bytes, asyncio.Task[_Record]] = {}

    async def authenticate(self, request: AuthRequest) -> UserInfo | None:
        token = bearer_token(request.headers.get("Authorization"))
        if token is None:
            return None
        record = await self._lookup(token)
        if record.user is not None:
            return record.user
        raise AuthenticationFailed(record.error or INVALID_BEARER_TOKEN)

    async def authenticate_token(self, token: str) -> UserInfo | None:
        """The user of `token`, or None when the review said it is not authenticated; raises
        AuthenticationFailed when the review failed."""
        record = await self._lookup(token)
        if record.error is not None:
            raise AuthenticationFailed(record.error)
        return record.user

    def _key(self, token: str) -> bytes:
        # Length-prefixed fields, as k8s's keyFunc, so audience/token boundaries cannot collide.
        mac = hmac.new(self._hmac_key, digestmod=hashlib.sha256)
        mac.update(len(self._audiences).to_bytes(8, "big"))
        for audience in self._audiences:
            data = audience.encode()
            mac.update(len(data).to_bytes(8, "big") + data)
        data = token.encode()
        mac.update(len(data).to_bytes(8, "big") + data)
        return mac.digest()

    def _cached(self, key: bytes) -> _Record | None:
        entry = self._cache.get(key)
        if entry is None:
            return None
        expires, record = entry
        if self._clock() >= expires:
            del self._cache[key]
            return None
        self._cache.move_to_end(key)
        return record

    def _store(self, key: bytes, record: _Record) -> None:
        if self._ttl <= 0:
            return
        self._cache[key] = (self._clock() + self._ttl, record)
        self._cache.move_to_end(key)
        while len(self._cache) > self._max_entries:
            self._cache.popitem(last=False)

    async def _lookup(self, token: str) -> _Record:
        key = self._key(token)
        record = self._cached(key)
        if record is not None:
            return record
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._review(key, token))
            self._inflight[key] = task
            task.add_done_callback(lambda _t: self._inflight.pop(key, None))
        # Shielded: one caller giving up must not cancel the review the others wait for.
        return await asyncio.shield(task)

    async def _review(self, key: bytes, token: str) -> _Record:
        try:
            async with asyncio.timeout(self._timeout):
                status = await self._client.create_token_review(token, self._audiences)
        except Exception as exc:
            # Never log the token; the exception text comes from the API client.
            log.warning("TokenReview failed: %s", type(exc).__name__)
            return _Record(None, f"TokenReview failed: {exc}" if str(exc) else "TokenReview failed")
        record = self._record_from_status(status)
        if record.error is None:  # errors are not cached (k8s: cacheErrs=false)
            self._store(key, record)
        return record

    def _record_from_status(self, status: Mapping[str, Any]) -> _Record:
        if not status.get("authenticated"):
            error = status.get("error")
            return _Record(None, str(error) if error else None)
        if self._audiences:
            got = status.get("audiences") or ()
            # An empty answer means the API server's own audiences, which are ours.
            if got and not set(got) & set(self._audiences):
                return _Record(None)
        return _Record(_user_from_status(status))
