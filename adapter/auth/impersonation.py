"""The impersonation filter of k8s.io/apiserver (pkg/endpoints/filters/impersonation.go,
WithImpersonation) as an aiohttp middleware.

A request with `Impersonate-User` (and optionally `Impersonate-Group`, `Impersonate-Uid`,
`Impersonate-Extra-<key>`) is served as that user once the authenticated user may `impersonate`
each of them. It sits after authentication and the audit filter and before authorization, which
then authorizes the impersonated user. Through the aggregator kube-apiserver has already
consumed these headers; they matter for direct access (`kubectl --as`, port-forward).
"""

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from multidict import CIMultiDict, CIMultiDictProxy

from adapter.audit.middleware import log_impersonated_user
from adapter.auth.authenticators import _unescape_extra_key as unescape_extra_key
from adapter.auth.authorizers import Attributes, AuthorizationError, Authorizer
from adapter.auth.middleware import USER_KEY, forbidden_response, internal_error
from adapter.auth.request_info import RequestInfo
from adapter.auth.user import ALL_AUTHENTICATED, ALL_UNAUTHENTICATED, ANONYMOUS_USER, UserInfo

__all__ = [
    "ImpersonationHeaderError",
    "ImpersonationKind",
    "ImpersonationRequest",
    "impersonated_user",
    "impersonation_attributes",
    "impersonation_middleware",
    "parse_impersonation_headers",
]

log = logging.getLogger(__name__)

USER_HEADER = "Impersonate-User"
GROUP_HEADER = "Impersonate-Group"
UID_HEADER = "Impersonate-Uid"
EXTRA_HEADER_PREFIX = "impersonate-extra-"

_SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"
_SERVICE_ACCOUNTS_GROUP = "system:serviceaccounts"
_AUTHENTICATION_API_VERSION = "authentication.k8s.io/v1"
# apimachinery validation: a namespace is a DNS-1123 label, an SA name a DNS-1123 subdomain.
_DNS1123_LABEL_PATTERN = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?"
_DNS1123_LABEL = re.compile(_DNS1123_LABEL_PATTERN)
_DNS1123_SUBDOMAIN = re.compile(rf"{_DNS1123_LABEL_PATTERN}(?:\.{_DNS1123_LABEL_PATTERN})*")


class ImpersonationKind(StrEnum):
    SERVICE_ACCOUNT = "ServiceAccount"
    USER = "User"
    GROUP = "Group"
    USER_EXTRA = "UserExtra"
    UID = "UID"


# kind -> (API group, API version, resource) of the `impersonate` check. Version "" for the
# core kinds: Go reads it from the ObjectReference's empty APIVersion.
_CHECKED_RESOURCE = {
    ImpersonationKind.SERVICE_ACCOUNT: ("", "", "serviceaccounts"),
    ImpersonationKind.USER: ("", "", "users"),
    ImpersonationKind.GROUP: ("", "", "groups"),
    ImpersonationKind.USER_EXTRA: ("authentication.k8s.io", "v1", "userextras"),
    ImpersonationKind.UID: ("authentication.k8s.io", "v1", "uids"),
}


class ImpersonationHeaderError(ValueError):
    """Groups, extras or a uid were requested without a user (answered with a 500)."""


@dataclass(frozen=True, slots=True)
class ImpersonationRequest:
    """One thing to impersonate, as Go's v1.ObjectReference carries it: the extra key of a
    UserExtra is its `field_path`."""

    kind: ImpersonationKind
    name: str
    namespace: str = ""
    api_version: str = ""
    field_path: str = ""

    def __str__(self) -> str:
        # Go's %v of the ObjectReference: its 7 fields (UID, ResourceVersion always empty).
        fields = (self.kind, self.namespace, self.name, "", self.api_version, "", self.field_path)
        return "{" + " ".join(fields) + "}"


def _split_service_account(username: str) -> tuple[str, str] | None:
    """serviceaccount.SplitUsername: (namespace, name) of a valid SA username, else None."""
    if not username.startswith(_SERVICE_ACCOUNT_PREFIX):
        return None
    parts = username[len(_SERVICE_ACCOUNT_PREFIX) :].split(":")
    if len(parts) != 2:
        return None
    namespace, name = parts
    if len(namespace) > 63 or _DNS1123_LABEL.fullmatch(namespace) is None:
        return None
    if len(name) > 253 or _DNS1123_SUBDOMAIN.fullmatch(name) is None:
        return None
    return namespace, name


def parse_impersonation_headers(headers: CIMultiDictProxy[str]) -> list[ImpersonationRequest]:
    """buildImpersonationRequests: user, groups, extras, uid, in that order; [] when the
    request impersonates nobody."""
    requests: list[ImpersonationRequest] = []
    user = headers.get(USER_HEADER, "")
    if user:
        service_account = _split_service_account(user)
        if service_account is not None:
            namespace, name = service_account
            requests.append(
                ImpersonationRequest(ImpersonationKind.SERVICE_ACCOUNT, name, namespace)
            )
        else:
            requests.append(ImpersonationRequest(ImpersonationKind.USER, user))
    groups = headers.getall(GROUP_HEADER, ())
    requests.extend(ImpersonationRequest(ImpersonationKind.GROUP, group) for group in groups)
    # Go's header map holds all values of one (canonical) name together.
    extra_names = dict.fromkeys(
        lowered for name in headers if (lowered := name.lower()).startswith(EXTRA_HEADER_PREFIX)
    )
    for name in extra_names:
        # url.PathUnescape, as for the front-proxy extra headers.
        key = unescape_extra_key(name[len(EXTRA_HEADER_PREFIX) :])
        requests.extend(
            ImpersonationRequest(
                ImpersonationKind.USER_EXTRA,
                value,
                api_version=_AUTHENTICATION_API_VERSION,
                field_path=key,
            )
            for value in headers.getall(name)
        )
    uid = headers.get(UID_HEADER, "")
    if uid:
        requests.append(
            ImpersonationRequest(
                ImpersonationKind.UID, uid, api_version=_AUTHENTICATION_API_VERSION
            )
        )
    if (groups or extra_names or uid) and not user:
        listed = " ".join(str(request) for request in requests)
        raise ImpersonationHeaderError(f"requested [{listed}] without impersonating a user")
    return requests


def impersonation_attributes(requestor: UserInfo, request: ImpersonationRequest) -> Attributes:
    """What the requestor must be allowed: verb `impersonate` on the requested thing."""
    api_group, api_version, resource = _CHECKED_RESOURCE[request.kind]
    return Attributes(
        requestor,
        RequestInfo(
            is_resource_request=True,
            path="",  # Go's AttributesRecord has none (it counts toward the SAR cache limit)
            verb="impersonate",
            api_group=api_group,
            api_version=api_version,
            namespace=request.namespace,
            resource=resource,
            subresource=request.field_path,
            name=request.name,
        ),
    )


def impersonated_user(requests: Sequence[ImpersonationRequest]) -> UserInfo:
    """The user the request acts as once every request was allowed."""
    groups_specified = any(r.kind is ImpersonationKind.GROUP for r in requests)
    username = uid = ""
    groups: list[str] = []
    extra: dict[str, list[str]] = {}
    for request in requests:
        match request.kind:
            case ImpersonationKind.SERVICE_ACCOUNT:
                username = f"{_SERVICE_ACCOUNT_PREFIX}{request.namespace}:{request.name}"
                if not groups_specified:
                    # A service account's groups are a fixed mapping.
                    namespace_group = f"{_SERVICE_ACCOUNTS_GROUP}:{request.namespace}"
                    groups = [_SERVICE_ACCOUNTS_GROUP, namespace_group]
            case ImpersonationKind.USER:
                username = request.name
            case ImpersonationKind.GROUP:
                groups.append(request.name)
            case ImpersonationKind.USER_EXTRA:
                extra.setdefault(request.field_path, []).append(request.name)
            case ImpersonationKind.UID:
                uid = request.name
    if username != ANONYMOUS_USER:
        # Explicit groups are the authority, but still mark the user authenticated unless
        # they say otherwise.
        if ALL_AUTHENTICATED not in groups and ALL_UNAUTHENTICATED not in groups:
            groups.append(ALL_AUTHENTICATED)
    elif ALL_UNAUTHENTICATED not in groups:
        groups.append(ALL_UNAUTHENTICATED)
    return UserInfo(username, uid, groups, extra)


def _without_impersonation_headers(headers: CIMultiDictProxy[str]) -> CIMultiDict[str]:
    remaining = CIMultiDict(headers)
    for name in (USER_HEADER, GROUP_HEADER, UID_HEADER):
        remaining.popall(name, None)
    for name in {n for n in remaining if n.lower().startswith(EXTRA_HEADER_PREFIX)}:
        remaining.popall(name, None)
    return remaining


def _user_string(user: UserInfo) -> str:
    # The filter's userString, for the log line.
    groups = f"[{','.join(user.groups)}]" if user.groups else ""
    return (user.name or "<empty>") + groups


def impersonation_middleware(authorizer: Authorizer) -> Middleware:
    """WithImpersonation. `authorizer`: the one the authorization filter uses, without its audit
    decision annotations (Go annotates only the authorization filter's decision)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            requests = parse_impersonation_headers(request.headers)
        except ImpersonationHeaderError as exc:
            log.debug("%s", exc)
            return internal_error(request, str(exc))
        if not requests:
            return await handler(request)
        requestor = request.get(USER_KEY)
        if requestor is None:
            log.error("impersonation without an authenticated user for %s", request.path)
            return internal_error(request, "no user found for request")
        for wanted in requests:
            attributes = impersonation_attributes(requestor, wanted)
            reason = ""
            try:
                decision = await authorizer.authorize(attributes)
                allowed, reason = decision.allowed, decision.reason
            except AuthorizationError as exc:
                log.debug("impersonation check failed: %s", exc)
                allowed = False
            if not allowed:
                log.debug("Forbidden %s impersonating %s", request.path, wanted)
                return forbidden_response(request, requestor, attributes.request, reason)
        user = impersonated_user(requests)
        log.debug("%s is impersonating %s", _user_string(requestor), _user_string(user))
        log_impersonated_user(user)
        impersonating = request.clone(headers=_without_impersonation_headers(request.headers))
        impersonating[USER_KEY] = user
        return await handler(impersonating)

    return middleware
