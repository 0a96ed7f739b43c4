"""Request filters, outermost first, in k8s.io/apiserver's order: panic recovery and Status
rendering, request bookkeeping (logs, metrics), refusing upgrades; authentication and
authorization slot in after these."""

import logging
import time
from collections.abc import Callable

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from adapter.errors import (
    APIError,
    BadRequestError,
    MethodNotAllowedError,
    UnknownError,
    path_not_found,
)
from adapter.server.metrics import AdapterMetrics
from adapter.server.responses import status_response

__all__ = [
    "UNROUTED_KEY",
    "error_middleware",
    "error_response",
    "refuse_upgrades",
    "request_group",
]

log = logging.getLogger(__name__)
access_log = logging.getLogger("adapter.access")


def request_group(path: str) -> str:
    """A low-cardinality label for a request path: the API group, or the endpoint kind."""
    if path.startswith("/apis/"):
        return path.split("/", 3)[2] or "discovery"
    if path == "/apis":
        return "discovery"
    for prefix in ("/healthz", "/livez", "/readyz"):
        if path.startswith(prefix):
            return "health"
    if path.startswith("/openapi"):
        return "openapi"
    if path == "/metrics":
        return "metrics"
    return "other"


# What answers a path no route matches (the generic apiserver's NotFoundHandler); without it,
# a 404 Status.
UNROUTED_KEY: web.AppKey[Callable[[web.Request], web.Response]] = web.AppKey("unrouted")


def error_response(request: web.Request, exc: Exception) -> web.Response | None:
    """The answer to an API or HTTP error raised while serving `request` (None for any other
    exception, which is a bug)."""
    if isinstance(exc, APIError):
        return status_response(request, exc)
    if isinstance(exc, web.HTTPNotFound):
        unrouted = request.app.get(UNROUTED_KEY)
        if unrouted is not None:
            return unrouted(request)
        return status_response(request, path_not_found())
    if isinstance(exc, web.HTTPMethodNotAllowed):
        # go-restful's 405, through apierrors.NewGenericServerResponse.
        message = "the server does not allow this method on the requested resource"
        return status_response(request, MethodNotAllowedError(message, details={}))
    if isinstance(exc, web.HTTPException):
        response = status_response(request, UnknownError(exc.reason))
        response.set_status(exc.status)
        return response
    return None


def error_middleware(metrics: AdapterMetrics) -> Middleware:
    """Every error becomes a Status (never a traceback, never a dropped connection), and every
    request is counted, timed and logged."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        try:
            response = await handler(request)
        except Exception as exc:
            error = error_response(request, exc)
            if error is None:
                log.exception("panic while serving %s %s", request.method, request.path)
                error = status_response(
                    request, UnknownError(f"internal error: {type(exc).__name__}")
                )
            response = error
        seconds = time.perf_counter() - started
        group = request_group(request.path)
        metrics.requests.labels(group, str(response.status)).inc()
        metrics.request_duration.labels(group).observe(seconds)
        if access_log.isEnabledFor(logging.DEBUG):
            # The query string may carry selectors but never credentials.
            access_log.debug(
                "%s %s %d %.1fms", request.method, request.path_qs, response.status, seconds * 1000
            )
        return response

    return middleware


@web.middleware
async def refuse_upgrades(request: web.Request, handler: Handler) -> web.StreamResponse:
    """No endpoint here speaks an upgraded protocol (websockets, SPDY); refuse them early."""
    if "upgrade" in request.headers.get("Connection", "").lower() or "Upgrade" in request.headers:
        raise BadRequestError("upgrade requests are not supported")
    return await handler(request)
