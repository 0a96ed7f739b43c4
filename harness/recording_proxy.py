"""A recording reverse proxy: what did the adapter really send to Prometheus?

Put it between the code under test and a real Prometheus. It forwards every request and
records it; it can also refuse long URLs with 414 (as nginx or Prometheus' own HTTP server
do), answer everything with an HTML login page (a misconfigured proxy or auth portal), or
stand for an authenticating TLS front such as OpenShift's kube-rbac-proxy: serve HTTPS and
answer 401 to a request without the expected ``Authorization`` header; or stand for a
multi-tenant front such as Mimir's or Cortex's, answering 401 "no org id" to a request
without a tenant header (``require_header``).
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

__all__ = [
    "HOP_BY_HOP",
    "LOGIN_PAGE",
    "RecordedRequest",
    "RecordingProxy",
    "running_recording_proxy",
]

LOGIN_PAGE = "<html><body>Login</body></html>"

# RFC 9110 §7.6.1 hop-by-hop headers, plus those the client library sets itself.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
_SET_BY_CLIENT = frozenset({"host", "content-length"})
# Long URLs are what this proxy may be asked to test: aiohttp's default line limit is 8190.
_MAX_LINE = 1 << 20


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the proxy received it (``query`` keeps repeated keys, in order)."""

    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes
    raw_path: str = ""
    """Path and query string exactly as sent (still percent-encoded)."""
    status: int = 0
    """What the proxy answered."""


class RecordingProxy:
    """The proxy server; :attr:`requests` lists what it received, oldest first."""

    def __init__(
        self,
        upstream_url: str,
        *,
        max_url_length: int | None = None,
        html_error: bool = False,
        ssl_context: ssl.SSLContext | None = None,
        authorization: str | None = None,
        require_header: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.upstream_url = upstream_url.rstrip("/")
        self.max_url_length = max_url_length
        self.html_error = html_error
        self.ssl_context = ssl_context
        self.authorization = authorization
        """When set, the only ``Authorization`` value let through; may be changed while
        running (a rotated token)."""
        self.require_header = require_header
        """When set, a request without this header (or with it empty) is answered 401."""
        self.host = host
        self.port = port
        self.requests: list[RecordedRequest] = []
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        """Base URL of the proxy; a request to ``url + P`` goes to ``upstream_url + P``."""
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://{self.host}:{self.port}"

    def clear(self) -> None:
        self.requests.clear()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        status, response = await self._answer(request, body)
        self.requests.append(
            RecordedRequest(
                method=request.method,
                path=request.path,
                query=list(request.query.items()),
                headers=dict(request.headers),
                body=body,
                raw_path=request.raw_path,
                status=status,
            )
        )
        return response

    async def _answer(self, request: web.Request, body: bytes) -> tuple[int, web.Response]:
        if self.html_error:
            return 200, web.Response(text=LOGIN_PAGE, content_type="text/html")
        if self.authorization is not None and (
            request.headers.getall("Authorization", []) != [self.authorization]
        ):
            return 401, web.Response(status=401, text="Unauthorized\n")
        if self.require_header is not None and not request.headers.get(self.require_header):
            return 401, web.Response(status=401, text="no org id\n")
        if self.max_url_length is not None and len(request.raw_path) > self.max_url_length:
            return 414, web.Response(status=414, text="414 Request-URI Too Long\n")
        assert self._session is not None
        headers = CIMultiDict(
            (name, value)
            for name, value in request.headers.items()
            if name.lower() not in HOP_BY_HOP | _SET_BY_CLIENT
        )
        target = URL(self.upstream_url + request.raw_path, encoded=True)
        try:
            async with self._session.request(
                request.method,
                target,
                headers=headers,
                data=body if body else None,
                allow_redirects=False,
            ) as upstream:
                payload = await upstream.read()
                reply_headers = CIMultiDict(
                    (name, value)
                    for name, value in upstream.headers.items()
                    if name.lower() not in HOP_BY_HOP | {"content-length"}
                )
                return upstream.status, web.Response(
                    status=upstream.status, body=payload, headers=reply_headers
                )
        except (aiohttp.ClientError, OSError, TimeoutError) as error:
            # What a real reverse proxy says when its upstream is down.
            return 502, web.Response(status=502, text=f"502 Bad Gateway: {error}\n")

    async def start(self) -> None:
        # Bodies are passed through as they are: no decompression, no added encoding.
        self._session = aiohttp.ClientSession(
            auto_decompress=False, timeout=aiohttp.ClientTimeout(total=60)
        )
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(
            app,
            access_log=None,
            shutdown_timeout=1.0,
            max_line_size=_MAX_LINE,
            max_field_size=_MAX_LINE,
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=self.ssl_context)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()


@contextlib.asynccontextmanager
async def running_recording_proxy(
    upstream_url: str,
    *,
    max_url_length: int | None = None,
    html_error: bool = False,
    ssl_context: ssl.SSLContext | None = None,
    authorization: str | None = None,
    require_header: str | None = None,
) -> AsyncIterator[RecordingProxy]:
    """Run a :class:`RecordingProxy` to ``upstream_url`` for the duration of the block."""
    proxy = RecordingProxy(
        upstream_url,
        max_url_length=max_url_length,
        html_error=html_error,
        ssl_context=ssl_context,
        authorization=authorization,
        require_header=require_header,
    )
    try:
        await proxy.start()
        yield proxy
    finally:
        await proxy.stop()
