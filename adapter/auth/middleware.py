"""Authentication and authorization filters (pkg/endpoints/filters/authentication.go and
authorization.go) as aiohttp middlewares.

List them after error handling and before the handlers, authentication first. Authentication
removes `Authorization` and every identity header from the request the handler sees and stores
the user under `USER_KEY`; authorization stores the `RequestInfo` under `REQUEST_INFO_KEY`.
"""

import logging
from collections.abc import Callable

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from multidict import CIMultiDict

from adapter.auth.authenticators import RequestHeaderConfig
from adapter.auth.authorizers import Attributes, AuthorizationError, Authorizer
from adapter.auth.credentials import AuthenticationFailed, Authenticator, AuthRequest
from adapter.auth.request_info import RequestInfo, new_request_info
from adapter.auth.user import ANONYMOUS, UserInfo
from adapter.errors import ForbiddenError, UnauthorizedError
from adapter.golang.quote import go_quote
from adapter.server.responses import status_response

__all__ = [
    "REQUEST_INFO_KEY",
    "USER_KEY",
    "authentication_middleware",
    "authorization_middleware",
    "forbidden_error",
    "forbidden_response",
    "internal_error",
    "request_info_of",
    "strip_identity_headers",
]

log = logging.getLogger(__name__)

USER_KEY = web.RequestKey("user", UserInfo)
REQUEST_INFO_KEY = web.RequestKey("request_info", RequestInfo)

# The standard front-proxy headers are removed even when the configuration names others.
_STANDARD_HEADERS = ("Authorization", "X-Remote-User", "X-Remote-Uid", "X-Remote-Group")
_STANDARD_PREFIXES = ("x-remote-extra-",)
_NOSNIFF = {"X-Content-Type-Options": "nosniff"}


def strip_identity_headers(headers: CIMultiDict[str], config: RequestHeaderConfig | None) -> bool:
    """Remove `Authorization` and the standard and configured identity headers in place;
    whether anything was removed."""
    names = {name.lower() for name in _STANDARD_HEADERS}
    prefixes = list(_STANDARD_PREFIXES)
    if config is not None:
        names.update(
            n.lower()
            for n in (*config.username_headers, *config.uid_headers, *config.group_headers)
        )
        prefixes.extend(p.lower() for p in config.extra_prefixes)
    doomed = {
        key for key in headers if key.lower() in names or key.lower().startswith(tuple(prefixes))
    }
    for key in doomed:
        headers.popall(key, None)
    return bool(doomed)


def authentication_middleware(
    authenticator: Authenticator,
    *,
    anonymous_allowed: bool = True,
    request_header_config: Callable[[], RequestHeaderConfig | None] = lambda: None,
) -> Middleware:
    """401 when a presented credential fails (FailOnError: no fallback to anonymous); the
    anonymous user when no credential was presented (if allowed)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            user = await authenticator.authenticate(AuthRequest.from_web_request(request))
        except AuthenticationFailed as exc:
            # The reason may name a certificate but never carries a credential.
            log.info("Unable to authenticate the request: %s", exc)
            return _unauthorized(request)
        if user is None:
            if not anonymous_allowed:
                return _unauthorized(request)
            user = ANONYMOUS
        headers = CIMultiDict(request.headers)
        if strip_identity_headers(headers, request_header_config()):
            request = request.clone(headers=headers)
        request[USER_KEY] = user
        return await handler(request)

    return middleware


def _unauthorized(request: web.Request) -> web.Response:
    return status_response(request, UnauthorizedError("Unauthorized"))


def request_info_of(request: web.BaseRequest) -> RequestInfo:
    """The request's RequestInfo (computed once and kept on the request)."""
    info = request.get(REQUEST_INFO_KEY)
    if info is None:
        query: dict[str, str] = {}
        for key, value in request.query.items():
            query.setdefault(key, value)
        info = new_request_info(request.method, request.path, query)
        request[REQUEST_INFO_KEY] = info
    return info


def _sanitize(text: str) -> str:
    # responsewriters' sanitizer: these messages may be rendered by browsers.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def forbidden_error(user: UserInfo, info: RequestInfo, reason: str) -> ForbiddenError:
    """responsewriters.Forbidden + apierrors.NewForbidden, word for word."""
    name = go_quote(user.name)
    if not info.is_resource_request:
        message = f"User {name} cannot {info.verb} path {go_quote(info.path)}"
    else:
        resource = info.resource + (f"/{info.subresource}" if info.subresource else "")
        message = (
            f"User {name} cannot {info.verb} resource {go_quote(resource)} "
            f"in API group {go_quote(info.api_group)} "
            + (
                f"in the namespace {go_quote(info.namespace)}"
                if info.namespace
                else "at the cluster scope"
            )
        )
    message = _sanitize(message)
    if reason:
        message = f"{message}: {reason}"
    group = info.api_group if info.is_resource_request else ""
    resource = info.resource if info.is_resource_request else ""
    object_name = info.name if info.is_resource_request else ""
    if not group and not resource:
        full = f"forbidden: {message}"
    else:
        qualified = f"{resource}.{group}" if group else resource
        full = (
            f"{qualified} {go_quote(object_name)} is forbidden: {message}"
            if object_name
            else f"{qualified} is forbidden: {message}"
        )
    details = {
        key: value
        for key, value in (("name", object_name), ("group", group), ("kind", resource))
        if value
    }
    return ForbiddenError(full, details=details)


def authorization_middleware(authorizer: Authorizer) -> Middleware:
    """403 Status unless the authorizer allows; a plain-text 500 when it could not decide."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        user = request.get(USER_KEY)
        if user is None:
            # Missing authentication is a wiring bug; never treat it as anonymous.
            log.error("authorization without an authenticated user for %s", request.path)
            return internal_error(request, "no user found for request")
        info = request_info_of(request)
        try:
            decision = await authorizer.authorize(Attributes(user, info))
        except AuthorizationError as exc:
            return internal_error(request, str(exc))
        if decision.allowed:
            return await handler(request)
        log.debug("Forbidden %s %s", request.method, request.path)
        return forbidden_response(request, user, info, decision.reason)

    return middleware


def forbidden_response(
    request: web.Request, user: UserInfo, info: RequestInfo, reason: str
) -> web.Response:
    """responsewriters.Forbidden: the 403 Status of `forbidden_error`, negotiated."""
    error = forbidden_error(user, info, reason)
    return status_response(request, error, headers=dict(_NOSNIFF))


def internal_error(request: web.BaseRequest, error: str) -> web.Response:
    # responsewriters.InternalError: Go's http.Error, plain text with a trailing newline.
    text = _sanitize(f"Internal Server Error: {go_quote(request.raw_path)}: {error}")
    return web.Response(
        text=text + "\n",
        status=500,
        content_type="text/plain",
        charset="utf-8",
        headers=dict(_NOSNIFF),
    )
