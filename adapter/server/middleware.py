"""Request filters, outermost first, in k8s.io/apiserver's order: panic recovery and Status
rendering, request bookkeeping (logs, metrics), refusing upgrades; authentication and
authorization slot in after these."""

import logging
import time

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
from adapter.server.responses import json_response

__all__ = ["error_middleware", "refuse_upgrades", "request_group"]

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


def _status_response(error: APIError) -> web.Response:
    return json_response(error.status(), status=error.code)


def error_middleware(metrics: AdapterMetrics) -> Middleware:
    """Every error becomes a Status (never a traceback, never a dropped connection), and every
    request is counted, timed and logged."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        try:
            response = await handler(request)
        except APIError as exc:
            response = _status_response(exc)
        except web.HTTPNotFound:
            response = _status_response(path_not_found())
        except web.HTTPMethodNotAllowed:
            response = _status_response(
                MethodNotAllowedError(
                    "the server does not allow this method on the requested resource"
                )
            )
        except web.HTTPException as exc:
            response = _status_response(UnknownError(exc.reason))
            response.set_status(exc.status)
        except Exception as exc:
            log.exception("panic while serving %s %s", request.method, request.path)
            response = _status_response(UnknownError(f"internal error: {type(exc).__name__}"))
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
