"""`/healthz`, `/livez`, `/readyz` in k8s.io/apiserver's format.

Success is `ok` (or, with `?verbose`, one `[+]<check> ok` line per check and a closing
`<endpoint> check passed`). A failure is always verbose, with status 500 and `[-]<check>
failed: reason withheld`; the reason goes to the log only. Each check also answers at
`/<endpoint>/<check>`. `?exclude=<check>` skips a check.
"""

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from aiohttp import web

__all__ = ["HealthCheck", "add_health_routes"]

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.Response]]


@dataclass(frozen=True, slots=True)
class HealthCheck:
    name: str
    check: Callable[[], str | None]  # None when healthy, else the reason


def _text(body: str, status: int = 200) -> web.Response:
    response = web.Response(text=body, status=status, content_type="text/plain", charset="utf-8")
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _endpoint_handler(endpoint: str, checks: Sequence[HealthCheck]) -> Handler:
    names = {c.name for c in checks}

    async def handle(request: web.Request) -> web.Response:
        excluded = set(request.query.getall("exclude", []))
        lines = []
        failed = False
        for c in checks:
            if c.name in excluded:
                lines.append(f"[+]{c.name} excluded: ok")
                continue
            reason = c.check()
            if reason is None:
                lines.append(f"[+]{c.name} ok")
            else:
                failed = True
                log.warning("%s check %s failed: %s", endpoint, c.name, reason)
                lines.append(f"[-]{c.name} failed: reason withheld")
        unknown = sorted(excluded - names)
        if unknown:
            quoted = ", ".join(f'"{u}"' for u in unknown)
            lines.append(f"warn: some health checks cannot be excluded: no matches for {quoted}")
        if failed:
            return _text("\n".join([*lines, f"{endpoint} check failed"]) + "\n", 500)
        if "verbose" in request.query:
            return _text("\n".join([*lines, f"{endpoint} check passed"]) + "\n")
        return _text("ok")

    return handle


def _check_handler(check: HealthCheck) -> Handler:
    async def handle(request: web.Request) -> web.Response:
        reason = check.check()
        if reason is None:
            return _text("ok")
        return _text(f"internal server error: {reason}\n", 500)

    return handle


def add_health_routes(
    app: web.Application,
    *,
    healthz: Sequence[HealthCheck],
    livez: Sequence[HealthCheck],
    readyz: Sequence[HealthCheck],
) -> None:
    for endpoint, checks in (("healthz", healthz), ("livez", livez), ("readyz", readyz)):
        app.router.add_get(f"/{endpoint}", _endpoint_handler(endpoint, checks))
        for c in checks:
            app.router.add_get(f"/{endpoint}/{c.name}", _check_handler(c))
