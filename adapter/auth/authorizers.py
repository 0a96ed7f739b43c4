"""The delegated authorizer chain of k8s.io/apiserver (options/authorization.go).

Order: always-allow groups (`system:masters`), always-allow paths (non-resource requests only),
then a SubjectAccessReview, cached by the JSON of its spec for 10 s (allowed and denied apart).
"""

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from adapter.auth.request_info import RequestInfo
from adapter.auth.review import ReviewClient
from adapter.auth.user import SYSTEM_MASTERS, UserInfo

__all__ = [
    "AlwaysAllowGroups",
    "AlwaysAllowPaths",
    "Attributes",
    "AuthorizationError",
    "Authorizer",
    "Decision",
    "SubjectAccessReviewAuthorizer",
    "UnionAuthorizer",
    "subject_access_review_spec",
]

log = logging.getLogger(__name__)

# webhook.go maxControlledAttrCacheSize: huge attributes are not worth a cache slot.
_MAX_CACHED_ATTRIBUTE_SIZE = 10000


class AuthorizationError(Exception):
    """The authorizer could not decide (e.g. the SubjectAccessReview failed): answer 500."""


@dataclass(frozen=True, slots=True)
class Attributes:
    """What is asked of the authorizer: who, and the request's info."""

    user: UserInfo
    request: RequestInfo


@dataclass(frozen=True, slots=True)
class Decision:
    """An authorizer's answer. `allowed` false and `denied` false is "no opinion"; `denied`
    stops the union (an explicit deny)."""

    allowed: bool
    reason: str = ""
    denied: bool = False


NO_OPINION = Decision(False)
ALLOW = Decision(True)


class Authorizer(Protocol):
    async def authorize(self, attributes: Attributes) -> Decision:
        """The decision; raises AuthorizationError when none could be made."""
        ...


class AlwaysAllowGroups:
    """Allows any member of the given groups (`system:masters` by default)."""

    def __init__(self, groups: Sequence[str] = (SYSTEM_MASTERS,)) -> None:
        self._groups = frozenset(groups)

    async def authorize(self, attributes: Attributes) -> Decision:
        if any(group in self._groups for group in attributes.user.groups):
            return ALLOW
        return NO_OPINION


class AlwaysAllowPaths:
    """Allows non-resource requests to the given paths: exact, or a prefix when ending in `*`."""

    def __init__(self, paths: Sequence[str]) -> None:
        exact: set[str] = set()
        prefixes: list[str] = []
        for path in paths:
            path = path.removeprefix("/")
            if not path:
                exact.add(path)  # "/" itself
                continue
            if "*" in path[:-1]:
                raise ValueError(f"only trailing * allowed in {path!r}")
            if path.endswith("*"):
                prefixes.append(path[:-1])
            else:
                exact.add(path)
        self._exact = frozenset(exact)
        self._prefixes = tuple(prefixes)

    async def authorize(self, attributes: Attributes) -> Decision:
        info = attributes.request
        if info.is_resource_request:
            return NO_OPINION
        path = info.path.removeprefix("/")
        if path in self._exact or path.startswith(self._prefixes):
            return ALLOW
        return NO_OPINION


def subject_access_review_spec(attributes: Attributes) -> dict[str, Any]:
    """The SubjectAccessReview spec upstream's webhook authorizer sends (Go `omitempty`: empty
    fields are left out)."""
    user = attributes.user
    info = attributes.request
    spec: dict[str, Any] = {}
    if user.name:
        spec["user"] = user.name
    if user.groups:
        spec["groups"] = list(user.groups)
    if user.extra:
        spec["extra"] = {key: list(values) for key, values in user.extra.items()}
    if user.uid:
        spec["uid"] = user.uid
    if info.is_resource_request:
        resource = {
            "namespace": info.namespace,
            "verb": info.verb,
            "group": info.api_group,
            "version": info.api_version,
            "resource": info.resource,
            "subresource": info.subresource,
            "name": info.name,
        }
        spec["resourceAttributes"] = {k: v for k, v in resource.items() if v}
    else:
        spec["nonResourceAttributes"] = {
            k: v for k, v in {"path": info.path, "verb": info.verb}.items() if v
        }
    return spec


def _should_cache(info: RequestInfo) -> bool:
    size = sum(
        len(value)
        for value in (
            info.namespace,
            info.verb,
            info.api_group,
            info.api_version,
            info.resource,
            info.subresource,
            info.name,
            info.path,
        )
    )
    return size < _MAX_CACHED_ATTRIBUTE_SIZE


class SubjectAccessReviewAuthorizer:
    """Asks the API server with a SubjectAccessReview; decisions are cached in an LRU."""

    def __init__(
        self,
        client: ReviewClient,
        allowed_ttl: float = 10.0,
        denied_ttl: float = 10.0,
        max_entries: int = 8192,
        *,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._allowed_ttl = allowed_ttl
        self._denied_ttl = denied_ttl
        self._max_entries = max_entries
        self._timeout = timeout
        self._clock = clock
        self._cache: OrderedDict[bytes, tuple[float, Decision]] = OrderedDict()

    async def authorize(self, attributes: Attributes) -> Decision:
        spec = subject_access_review_spec(attributes)
        # Canonical JSON (sorted keys) so equal specs share an entry whatever their build order.
        key = orjson.dumps(spec, option=orjson.OPT_SORT_KEYS)
        cached = self._cached(key)
        if cached is not None:
            return cached
        try:
            async with asyncio.timeout(self._timeout):
                status = await self._client.create_subject_access_review(spec)
        except Exception as exc:
            log.warning("SubjectAccessReview failed: %s", type(exc).__name__)
            raise AuthorizationError(str(exc) or type(exc).__name__) from exc
        decision = self._decision(status)
        if _should_cache(attributes.request):
            self._store(key, decision)
        return decision

    @staticmethod
    def _decision(status: Mapping[str, Any]) -> Decision:
        allowed = bool(status.get("allowed"))
        denied = bool(status.get("denied"))
        reason = str(status.get("reason") or "")
        if allowed and denied:
            raise AuthorizationError(
                "webhook subject access review returned both allow and deny response"
            )
        if denied:
            return Decision(False, reason, denied=True)
        return Decision(allowed, reason)

    def _cached(self, key: bytes) -> Decision | None:
        entry = self._cache.get(key)
        if entry is None:
            return None
        expires, decision = entry
        if self._clock() >= expires:
            del self._cache[key]
            return None
        self._cache.move_to_end(key)
        return decision

    def _store(self, key: bytes, decision: Decision) -> None:
        ttl = self._allowed_ttl if decision.allowed else self._denied_ttl
        if ttl <= 0:
            return
        self._cache[key] = (self._clock() + ttl, decision)
        self._cache.move_to_end(key)
        while len(self._cache) > self._max_entries:
            self._cache.popitem(last=False)


class UnionAuthorizer:
    """The first allow or explicit deny wins; otherwise no opinion, with the reasons joined.

    An error of one authorizer does not stop the chain; it is raised only if no later
    authorizer allowed or denied (upstream returns it beside NoOpinion)."""

    def __init__(self, *authorizers: Authorizer) -> None:
        self._authorizers = authorizers

    async def authorize(self, attributes: Attributes) -> Decision:
        errors: list[str] = []
        reasons: list[str] = []
        for authorizer in self._authorizers:
            try:
                decision = await authorizer.authorize(attributes)
            except AuthorizationError as exc:
                errors.append(str(exc))
                continue
            if decision.allowed or decision.denied:
                return decision
            if decision.reason:
                reasons.append(decision.reason)
        if errors:
            raise AuthorizationError(
                errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]"
            )
        return Decision(False, "\n".join(reasons))
