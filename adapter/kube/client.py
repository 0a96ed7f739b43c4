"""A thin Kubernetes API client on aiohttp: GET, POST and watch on raw JSON.

Kept deliberately small (see the dependency notes): no typed models, one pooled session,
orjson for bodies. TLS and credentials come from `ClientCredentials` (a kubeconfig's token,
token file, basic auth, client certificate or exec plugin); requests pass a client-go style
token bucket first.
"""

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson
from multidict import CIMultiDict
from yarl import URL

from adapter.http_client import PooledClient
from adapter.kube.api import KubeAPIError
from adapter.kube.config import KubeConfig, KubeConfigError
from adapter.kube.credentials import ClientCredentials
from adapter.prometheus.transport import env_proxy
from adapter.redaction import authorization_forms, redact, secret_forms

__all__ = ["PARTIAL_METADATA_LIST_ACCEPT", "KubeClient", "TokenBucket"]

_log = logging.getLogger(__name__)

PARTIAL_METADATA_LIST_ACCEPT = (
    "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io,application/json"
)
_JSON = "application/json"
_WATCH_IDLE_SECONDS = 300.0
_MAX_WATCH_LINE = 64 << 20


class TokenBucket:
    """golang.org/x/time/rate as client-go uses it: `burst` tokens, refilled at `qps`/s.

    Each acquire takes a token, waiting for the refill when the bucket is empty; waiters
    reserve their slot up front, so they are served in order.
    """

    __slots__ = ("_burst", "_last", "_qps", "_tokens")

    def __init__(self, qps: float, burst: int) -> None:
        self._qps = qps
        self._burst = float(max(1, burst))
        self._tokens = self._burst
        self._last = time.monotonic()

    async def acquire(self) -> None:
        now = time.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._last) * self._qps)
        self._last = now
        self._tokens -= 1.0
        if self._tokens < 0:
            try:
                await asyncio.sleep(-self._tokens / self._qps)
            except asyncio.CancelledError:
                self._tokens += 1.0  # give the reservation back
                raise


class KubeClient(PooledClient):
    """`KubeAPI` over one pooled aiohttp session, created lazily in the running loop."""

    def __init__(
        self,
        config: KubeConfig,
        *,
        qps: float = 5.0,
        burst: int = 10,
        timeout: float = 10.0,
        user_agent: str = "prometheus-adapter-py",
    ) -> None:
        super().__init__()
        self._config = config
        self._base = URL(config.server.rstrip("/"))
        if not self._base.absolute or self._base.scheme not in ("http", "https"):
            raise KubeConfigError(f"invalid server URL {config.server!r}")
        self._base_path = self._base.path.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._connect_timeout = timeout
        self._user_agent = user_agent
        self._limiter = TokenBucket(qps, burst) if qps > 0 else None
        self._credentials = ClientCredentials(config)
        self._proxy, proxy_auth = env_proxy(self._base)
        self._proxy_headers = {"Proxy-Authorization": proxy_auth} if proxy_auth else None
        self._proxy_secrets = authorization_forms(proxy_auth) if proxy_auth else frozenset()

    # --- KubeAPI ------------------------------------------------------------------

    async def get(
        self, path: str, params: Mapping[str, str] | None = None, *, accept: str | None = None
    ) -> dict[str, Any]:
        """GET `path`; the decoded JSON object."""
        return await self._request("GET", path, params, None, accept)

    async def post(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST a JSON body; the decoded JSON answer."""
        return await self._request("POST", path, None, orjson.dumps(body), None)

    async def watch(
        self, path: str, params: Mapping[str, str] | None = None, *, accept: str | None = None
    ) -> AsyncGenerator[dict[str, Any], None]:
        """Stream watch events (one JSON object per line) until the server ends the stream.

        No total timeout: a connect timeout and an idle read timeout (5 min, or longer than
        the `timeoutSeconds` asked of the server). A stream cut short ends the iteration, as
        client-go's StreamWatcher does; the caller re-lists or re-watches either way.
        """
        query = {"watch": "1", **(params or {})}
        idle = _WATCH_IDLE_SECONDS
        with contextlib.suppress(ValueError):
            idle = max(idle, float(query.get("timeoutSeconds", "0")) + 30.0)
        timeout = aiohttp.ClientTimeout(total=None, connect=self._connect_timeout, sock_read=idle)
        resp = await self._send("GET", path, query, None, accept, timeout)
        try:
            if not 200 <= resp.status < 300:
                body = await resp.read()
                raise self._status_error(resp.status, resp.reason or "", body, path)
            buffer = b""
            try:
                async for chunk in resp.content.iter_any():
                    buffer += chunk
                    while (nl := buffer.find(b"\n")) >= 0:
                        line, buffer = buffer[:nl], buffer[nl + 1 :]
                        if line.strip():
                            yield self._decode_event(line, path)
                    if len(buffer) > _MAX_WATCH_LINE:
                        raise ValueError("a watch event exceeds 64 MiB")
            except _BadEvent as err:
                yield err.event
                return
            except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as err:
                _log.info("watch %s ended: %s", path, self._redact(f"{type(err).__name__}: {err}"))
                return
            if buffer.strip():
                try:
                    yield self._decode_event(buffer, path)
                except _BadEvent as err:
                    yield err.event
        finally:
            # Closing (not releasing) drops the connection: a half-read stream is not reusable.
            resp.close()

    # --- helpers used by the rest of the adapter --------------------------------

    async def get_configmap(self, namespace: str, name: str) -> dict[str, Any]:
        """The ConfigMap `namespace/name` (KubeAPIError 404 when absent)."""
        return await self.get(
            f"/api/v1/namespaces/{quote(namespace, safe='')}/configmaps/{quote(name, safe='')}"
        )

    async def create_token_review(
        self, token: str, audiences: Sequence[str] = ()
    ) -> dict[str, Any]:
        """POST a TokenReview; its `status` (authenticated, user, audiences, error)."""
        spec: dict[str, Any] = {"token": token}
        if audiences:
            spec["audiences"] = list(audiences)
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": spec}
        result = await self._request(
            "POST",
            "/apis/authentication.k8s.io/v1/tokenreviews",
            None,
            orjson.dumps(body),
            None,
            secrets=(token,),
        )
        status = result.get("status")
        return status if isinstance(status, dict) else {}

    async def create_subject_access_review(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        """POST a SubjectAccessReview; its `status` (allowed, denied, reason)."""
        body = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": dict(spec),
        }
        result = await self.post("/apis/authorization.k8s.io/v1/subjectaccessreviews", body)
        status = result.get("status")
        return status if isinstance(status, dict) else {}

    async def post_bytes(self, path: str, body: bytes) -> None:
        """POST a JSON body as it is; any 2xx answer will do, whatever it holds. An empty
        `path` is the server URL itself (a webhook's kubeconfig names its endpoint)."""
        await self._request("POST", path, None, body, None, decode=False)

    async def list_metadata(self, path: str, params: Mapping[str, str]) -> dict[str, Any]:
        """A list as PartialObjectMetadataList (metadata only: far smaller for pods)."""
        return await self.get(path, params, accept=PARTIAL_METADATA_LIST_ACCEPT)

    # --- internals ----------------------------------------------------------------

    def _new_session(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=100),
            cookie_jar=aiohttp.DummyCookieJar(),
        )

    def _url(self, path: str) -> URL:
        if not path:
            return self._base  # the server URL itself (client-go's Post() with no path)
        if not path.startswith("/"):
            path = "/" + path
        return self._base.with_path(self._base_path + path)

    def _redact(self, text: str, secrets: Sequence[str] = ()) -> str:
        """`secrets`: credentials this request carries besides ours (a reviewed token)."""
        forms = [form for secret in secrets for form in secret_forms(secret)]
        return redact(text, (*forms, *self._credentials.secrets(), *self._proxy_secrets))

    async def _request(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None,
        body: bytes | None,
        accept: str | None,
        *,
        secrets: Sequence[str] = (),
        decode: bool = True,
    ) -> dict[str, Any]:
        """The decoded JSON answer (with `decode`; else {} for any 2xx answer)."""
        started = time.perf_counter()
        resp = await self._send(method, path, params, body, accept, self._timeout, secrets)
        try:
            try:
                content = await resp.read()
            except TimeoutError:
                raise KubeAPIError(
                    0, "Timeout", f"no response within {self._timeout.total:g}s", path=path
                ) from None
            except (aiohttp.ClientError, OSError) as err:
                msg = self._redact(f"{type(err).__name__}: {err}", secrets)
                raise KubeAPIError(0, "ConnectionError", msg, path=path) from None
        finally:
            resp.release()
        _log.debug("%s %s %s (%.3fs)", method, path, resp.status, time.perf_counter() - started)
        if not 200 <= resp.status < 300:
            raise self._status_error(resp.status, resp.reason or "", content, path, secrets)
        if not decode or not content.strip():
            return {}
        try:
            data = orjson.loads(content)
        except orjson.JSONDecodeError as err:
            raise KubeAPIError(
                resp.status, "InvalidResponse", f"the body is not JSON: {err}", path=path
            ) from None
        if not isinstance(data, dict):
            raise KubeAPIError(
                resp.status, "InvalidResponse", "the body is not a JSON object", path=path
            )
        return data

    async def _send(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None,
        body: bytes | None,
        accept: str | None,
        timeout: aiohttp.ClientTimeout,
        secrets: Sequence[str] = (),
    ) -> aiohttp.ClientResponse:
        """Send one request (after the rate limiter); retried once with fresh exec
        credentials on 401. The caller reads and closes the response."""
        session = self._get_session()
        url = self._url(path)
        for attempt in (1, 2):
            if self._limiter is not None:
                await self._limiter.acquire()
            headers, ssl_ctx = await self._auth(force_refresh=attempt == 2)
            headers["Accept"] = accept or _JSON
            if body is not None:
                headers["Content-Type"] = _JSON
            try:
                resp = await session.request(
                    method,
                    url,
                    params=params,
                    data=body,
                    headers=headers,
                    ssl=ssl_ctx if url.scheme == "https" else True,
                    server_hostname=self._config.tls_server_name,
                    timeout=timeout,
                    allow_redirects=False,  # never replay the bearer token elsewhere
                    proxy=self._proxy,
                    proxy_headers=self._proxy_headers,
                )
            except TimeoutError:
                # Before ClientError: aiohttp's timeout errors subclass both.
                limit = timeout.total if timeout.total is not None else timeout.connect
                raise KubeAPIError(
                    0, "Timeout", f"no response within {limit or 0:g}s", path=path
                ) from None
            except (aiohttp.ClientError, OSError) as err:
                msg = self._redact(f"{type(err).__name__}: {err}", secrets)
                raise KubeAPIError(0, "ConnectionError", msg, path=path) from None
            if resp.status == 401 and attempt == 1 and self._credentials.uses_exec:
                _log.info("401 from the API server: refreshing the exec plugin credentials")
                resp.close()
                continue
            return resp
        raise AssertionError("unreachable")  # pragma: no cover

    async def _auth(self, *, force_refresh: bool) -> tuple[CIMultiDict[str], ssl.SSLContext]:
        credentials = self._credentials
        if force_refresh or credentials.needs_refresh():
            await credentials.refresh(force=force_refresh)
        headers: CIMultiDict[str] = CIMultiDict({"User-Agent": self._user_agent})
        authorization = credentials.authorization()
        if authorization is not None:
            headers["Authorization"] = authorization
        return headers, credentials.ssl_context

    def _status_error(
        self, status: int, http_reason: str, body: bytes, path: str, secrets: Sequence[str] = ()
    ) -> KubeAPIError:
        reason, message = http_reason, ""
        try:
            doc = orjson.loads(body) if body else None
        except orjson.JSONDecodeError:
            doc = None
        if isinstance(doc, dict) and doc.get("kind") == "Status":
            reason = str(doc.get("reason") or http_reason)
            message = str(doc.get("message") or "")
        else:
            # Redacted before it is cut short, so that the cut cannot split a credential.
            message = self._redact(body[:4096].decode("utf-8", errors="replace"), secrets)[:200]
        return KubeAPIError(status, reason, self._redact(message, secrets), path=path)

    def _decode_event(self, line: bytes, path: str) -> dict[str, Any]:
        try:
            event = orjson.loads(line)
        except orjson.JSONDecodeError as err:
            event = None
            problem = f"unable to decode an event from the watch stream: {err}"
        else:
            problem = "unable to decode an event from the watch stream: not an object"
        if isinstance(event, dict):
            return event
        # client-go's StreamWatcher reports an undecodable event as an ERROR and stops.
        raise _BadEvent(
            {
                "type": "ERROR",
                "object": {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "status": "Failure",
                    "code": 500,
                    "reason": "InternalError",
                    "message": problem,
                },
            }
        )


class _BadEvent(Exception):
    def __init__(self, event: dict[str, Any]) -> None:
        super().__init__("undecodable watch event")
        self.event = event
