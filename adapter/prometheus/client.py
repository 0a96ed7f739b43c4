"""An asyncio client for the three Prometheus endpoints the adapter uses.

Mirrors the Go adapter's `pkg/client` (`api.go`): parameters are encoded like Go's
`url.Values.Encode` (keys sorted, space as "+"), sent in the URL for GET or as a form body
for POST; only 2xx, 400, 422 and 503 responses are read as JSON; a JSON body with
`"status": "error"` becomes `<errorType>: <error>`. Every failure is a `PrometheusError`.

Differences from Go, all deliberate: requests are bounded by `PrometheusConfig.timeout`
(Go has no client timeout, so a hung Prometheus stalls it), the bearer token file is re-read
when it changes, errors say which URL and status they came from, and configuration errors
are raised by the constructor (Go's startup failures) as `PrometheusConfigError`.

Automatic POST (not in the Go adapter): with `verb="GET"`, a request whose encoded URL would
exceed `PrometheusConfig.max_get_url_length` bytes (default 8192) is sent as POST with a form
body instead, so a `pods/*` query over thousands of pods never meets a 414 "URI Too Long"
(Go adapter issue #668, crane #907). The first such switch is logged at info level; the
request observer sees the method actually used ("POST").

Transport (not Go's): requests whose whole answer is read go over `http1.Http1Pool`, a lean
keep-alive HTTP/1.1 client (see docs/performance.md for what it saves). aiohttp carries the
rest: requests through a proxy, the streamed series listing, redirects (the first one
switches the client to aiohttp for good) and every request when a `--prometheus-header`
sets Accept-Encoding.

Large answers (not in the Go adapter): answers read whole are read by `answers.Answer` on
either transport: small ones parsed in one call, large ones as they arrive (`query_stream`,
`series_stream`), so that the event loop keeps running. Past
`PrometheusConfig.max_response_size` bytes (`--prometheus-max-response-size`) the client
stops reading, closes the connection and fails with error type "too_large", naming the limit.

`stream_series` (not in the Go adapter) is `series` for discovery, whose answers can hold
millions of series: the body is parsed as it arrives (`series_stream`) and handed on in
batches, so memory does not grow with the number of series.
"""

import asyncio
import logging
import math
import time as _time
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, Protocol, TypeVar
from urllib.parse import quote_plus

import aiohttp
from multidict import CIMultiDict
from yarl import URL

from adapter import __version__
from adapter.golang.duration import format_prometheus_duration
from adapter.http_client import PooledClient
from adapter.kube.api import KubeAPIError
from adapter.prometheus.answers import (
    LABEL_NAMES,
    QUERY,
    SERIES,
    Answer,
    AnswerReading,
    is_json,
    read_aiohttp_answer,
)
from adapter.prometheus.config import (
    PrometheusConfig,
    PrometheusConfigError,
    check_header,
    format_size,
    parse_header_flags,
)
from adapter.prometheus.errors import PrometheusError
from adapter.prometheus.http1 import (
    Http1Pool,
    ResponseFramingError,
    ResponseHead,
    ResponseTooLarge,
)
from adapter.prometheus.results import (
    QueryResult,
    ResponseProblem,
    Sample,
    decode_response,
    format_time,
    parse_series_data,
)
from adapter.prometheus.series_stream import SeriesStreamParser
from adapter.prometheus.transport import (
    basic_auth,
    build_ssl_context,
    display_url,
    endpoint_url,
    env_proxy,
    kubeconfig_credentials,
)
from adapter.redaction import (
    authorization_forms,
    header_forms,
    redact,
    secret_forms,
    url_credential_forms,
)
from adapter.token_file import TokenFile, TokenFileError

__all__ = [
    "LABELS_ENDPOINT",
    "METRIC_NAMES_ENDPOINT",
    "QUERY_ENDPOINT",
    "SERIES_ENDPOINT",
    "PrometheusClient",
    "PrometheusConfig",
    "PrometheusConfigError",
    "PrometheusError",
    "QueryResult",
    "RequestObserver",
    "Sample",
    "SeriesSink",
    "parse_header_flags",
]

QUERY_ENDPOINT = "/api/v1/query"
SERIES_ENDPOINT = "/api/v1/series"
LABELS_ENDPOINT = "/api/v1/labels"
METRIC_NAMES_ENDPOINT = "/api/v1/label/__name__/values"

_log = logging.getLogger(__name__)
_T = TypeVar("_T")
_FORM = "application/x-www-form-urlencoded"
# Bytes of a series body parsed at a time: ~170 series, well under a millisecond of parsing.
_STREAM_CHUNK = 64 * 1024
_MAX_RESPONSE_SIZE_FLAG = "--prometheus-max-response-size"

SeriesSink = Callable[[list[dict[str, str]]], None]
"""Takes each batch of series (label sets) as `stream_series` parses them."""

_REDIRECTS = frozenset({301, 302, 303, 307, 308})

# Reads a response (status known, body not read yet) sent with the given method.
_Reader = Callable[[aiohttp.ClientResponse, str], Awaitable[_T]]


class _Streamed(Generic[_T]):
    """A reader of aiohttp's streamed body; such requests never take the lean client."""

    __slots__ = ("read",)

    def __init__(self, read: _Reader[_T]) -> None:
        self.read = read


class RequestObserver(Protocol):
    """Called once after every request (success or failure) for metrics, logs and tests.

    `params` are the encoded-in-order request parameters; `status` is None when no
    response arrived; `error` is None on success. Not called for cancelled requests.
    """

    def __call__(
        self,
        endpoint: str,
        method: str,
        params: Sequence[tuple[str, str]],
        status: int | None,
        seconds: float,
        error: PrometheusError | None,
    ) -> None: ...


def _encode(params: Sequence[tuple[str, str]]) -> str:
    # url.Values.Encode: "match[]" -> "match%5B%5D", space -> "+", "~" kept.
    return "&".join(f"{quote_plus(k, safe='')}={quote_plus(v, safe='')}" for k, v in params)


class PrometheusClient(PooledClient):
    """Pooled HTTP client for `/api/v1/query`, `/api/v1/series` and `/api/v1/labels`.

    The constructor validates the config and reads the CA, client pair and token files
    (raising `PrometheusConfigError` like the Go adapter's startup). The aiohttp session is
    created on first use, inside the running loop. Environment proxies (HTTP_PROXY, ...)
    apply only without `ca_file`, because Go's CA-file transport has no proxy function.
    """

    __slots__ = (
        "_auth_header",
        "_config",
        "_credential_auth",
        "_credentials",
        "_endpoints",
        "_lean",
        "_lean_accept",
        "_lean_headers",
        "_lean_paths",
        "_observer",
        "_post_logged",
        "_proxy",
        "_proxy_headers",
        "_secrets",
        "_ssl",
        "_static_headers",
        "_timeout_param",
        "_token",
    )

    def __init__(
        self, config: PrometheusConfig, *, observer: RequestObserver | None = None
    ) -> None:
        super().__init__()
        if config.verb not in ("GET", "POST"):
            raise PrometheusConfigError(
                f'unsupported Prometheus HTTP verb "{config.verb}"; '
                'supported verbs: "GET" and "POST"'
            )
        if not math.isfinite(config.timeout) or config.timeout < 0.001:
            raise PrometheusConfigError(
                f"invalid Prometheus timeout {config.timeout!r}: must be at least 1ms"
            )
        if config.max_connections < 0:
            raise PrometheusConfigError("the Prometheus connection pool size must not be negative")
        if config.max_get_url_length < 0:
            raise PrometheusConfigError("the maximum GET URL length must not be negative")
        if config.max_response_size < 0:
            raise PrometheusConfigError("the maximum response size must not be negative")
        try:
            base = URL(config.url)
        except (ValueError, TypeError) as err:
            raise PrometheusConfigError(f"invalid Prometheus URL: {err}") from None
        if base.scheme not in ("http", "https") or not base.host:
            raise PrometheusConfigError(
                f'invalid Prometheus URL "{display_url(base)}": '
                "expected http:// or https:// and a host"
            )
        for key, value in config.headers:
            check_header(key, value)
        self._config = config
        self._observer = observer
        self._endpoints = {
            ep: str(endpoint_url(base, ep))
            for ep in (QUERY_ENDPOINT, SERIES_ENDPOINT, LABELS_ENDPOINT, METRIC_NAMES_ENDPOINT)
        }
        self._credentials = kubeconfig_credentials(config)
        self._ssl = build_ssl_context(config, base.scheme, self._credentials)
        self._proxy, proxy_auth = (None, None) if config.ca_file else env_proxy(base)
        # aiohttp sends proxy_headers only on a CONNECT (https); a plain-http proxy reads
        # Proxy-Authorization from the request itself, which never reaches the origin.
        self._proxy_headers: dict[str, str] | None = None
        if proxy_auth and base.scheme == "https":
            self._proxy_headers = {"Proxy-Authorization": proxy_auth}
        try:
            self._token = (
                TokenFile(config.token_file, what="prometheus-token-file")
                if config.token_file
                else None
            )
        except TokenFileError as exc:
            raise PrometheusConfigError(str(exc)) from None
        self._timeout_param = format_prometheus_duration(config.timeout)

        headers: list[tuple[str, str]] = [("User-Agent", f"prometheus-adapter-py/{__version__}")]
        user_keys = {k.lower() for k, _ in config.headers}
        if "user-agent" in user_keys:
            headers.clear()
        headers.extend(config.headers)
        if proxy_auth and base.scheme == "http":
            headers.append(("Proxy-Authorization", proxy_auth))
        # Bodies are asked for uncompressed (unless --prometheus-header says otherwise).
        # Measured on loopback against Prometheus 2.42 (Helm default rules): gzip cost
        # Prometheus ~18% more CPU, made the relist slower (100k series: 0.94 s, not 0.76 s;
        # 1M: 11.7 s, not 10.1 s) and its inflating held our event loop for up to 25 ms at a
        # time (4 ms without). Memory does not care: the body is parsed as it streams in.
        # Query answers are small, and inflating them was ~3% of the adapter's CPU.
        if "accept-encoding" not in user_keys:
            headers.append(("Accept-Encoding", "identity"))
        self._static_headers = tuple(headers)
        # Go's precedence: an explicit Authorization header, then credentials in the URL
        # (net/http adds Basic auth before the transport), then the bearer token file.
        self._auth_header: str | None = None
        if "authorization" not in user_keys and base.user is not None:
            self._auth_header = basic_auth(base.user, base.password or "")
        if "authorization" in user_keys or self._auth_header is not None:
            self._token = None
        # The kubeconfig's credentials come last: client-go's round trippers leave an
        # Authorization header already set alone. Its TLS applies regardless.
        self._credential_auth = (
            self._credentials
            if self._auth_header is None and "authorization" not in user_keys
            else None
        )
        # Every form of every credential we send (see adapter.redaction); the token file's
        # and the kubeconfig's may change, so `_redact` asks for theirs each time.
        self._secrets = frozenset(
            (
                *url_credential_forms(base),
                *(form for key, value in config.headers for form in header_forms(key, value)),
                *(authorization_forms(proxy_auth) if proxy_auth else ()),
            )
        )
        self._post_logged = False
        # The lean HTTP/1.1 client, unless a proxy is in the way or a --prometheus-header
        # asked for compressed answers (aiohttp inflates any encoding it is sent).
        self._lean: Http1Pool | None = None
        if self._proxy is None and "accept-encoding" not in user_keys:
            assert base.raw_host is not None and base.port is not None
            self._lean = self._new_lean_pool()
        self._lean_paths = {ep: URL(u).raw_path for ep, u in self._endpoints.items()}
        # Header blocks as aiohttp sends them: Host first (without a default port), then ours;
        # for POST our Content-Type replaces a user's (Go's Header.Set).
        host = f"[{base.raw_host}]" if ":" in (base.raw_host or "") else base.raw_host
        if not base.is_default_port():
            host = f"{host}:{base.port}"
        lean = [] if "host" in user_keys else [("Host", host or "")]
        lean.extend(headers)
        self._lean_accept = "" if "accept" in user_keys else "Accept: */*\r\n"  # as aiohttp
        self._lean_headers = {
            method: "".join(
                f"{k}: {v}\r\n" for k, v in lean if method == "GET" or k.lower() != "content-type"
            )
            for method in ("GET", "POST")
        }

    def _new_lean_pool(self) -> Http1Pool:
        base = URL(self._config.url)
        assert base.raw_host is not None and base.port is not None
        https = base.scheme == "https"
        return Http1Pool(
            base.raw_host,
            base.port,
            ssl_context=self._ssl if https else None,
            server_hostname=self._tls_server_name() if https else None,
            limit=self._config.max_connections,
        )

    def _tls_server_name(self) -> str | None:
        """The kubeconfig's tls-server-name, else (None) the URL's host."""
        return self._credentials.tls_server_name if self._credentials is not None else None

    async def close(self) -> None:
        await super().close()
        if self._lean is not None:
            await self._lean.close()

    async def query(self, query: str, time: float | None = None) -> QueryResult:
        """Instant query at `time` (Unix seconds; Prometheus' "now" when None)."""
        params = [("query", query)]
        if time is not None:
            params.append(("time", format_time(time)))
        # Lets Prometheus abandon the evaluation once we have stopped waiting for it.
        params.append(("timeout", self._timeout_param))
        return await self._request(QUERY_ENDPOINT, params, QUERY)

    async def series(
        self, matches: Sequence[str], start: float | None = None, end: float | None = None
    ) -> list[dict[str, str]]:
        """Label sets (with `__name__`) of the series matching any of `matches`."""
        params = self._range_params(matches, start, end)
        return await self._request(SERIES_ENDPOINT, params, SERIES)

    async def stream_series(
        self,
        matches: Sequence[str],
        start: float | None = None,
        end: float | None = None,
        *,
        sink: SeriesSink,
    ) -> int:
        """`series()` for bodies too large to hold: the same request, but the series reach
        `sink` in batches as the body arrives; returns how many there were.

        On an error, batches already given to `sink` belong to a response that failed (a
        truncated body, an error envelope after the data) and must be discarded."""
        params = self._range_params(matches, start, end)

        async def read(resp: aiohttp.ClientResponse, method: str) -> int:
            return await _read_series(resp, method, sink)

        return await self._request(SERIES_ENDPOINT, params, _Streamed(read))

    async def labels(
        self, matches: Sequence[str] = (), start: float | None = None, end: float | None = None
    ) -> list[str]:
        """Label names, optionally only those of series matching `matches`."""
        params = self._range_params(matches, start, end)
        return await self._request(LABELS_ENDPOINT, params, LABEL_NAMES)

    async def metric_names(
        self, matches: Sequence[str] = (), start: float | None = None, end: float | None = None
    ) -> list[str]:
        """Values of `__name__`, optionally only of series matching `matches`. Always a GET:
        Prometheus serves `/api/v1/label/<name>/values` to GET only."""
        params = self._range_params(matches, start, end)
        return await self._request(
            METRIC_NAMES_ENDPOINT,
            params,
            LABEL_NAMES,
            get_only=True,
        )

    # --- internals ------------------------------------------------------------------

    @staticmethod
    def _range_params(
        matches: Sequence[str], start: float | None, end: float | None
    ) -> list[tuple[str, str]]:
        if isinstance(matches, str):  # a bare string would become one matcher per character
            raise TypeError("matches must be a sequence of selectors, not a string")
        params: list[tuple[str, str]] = []
        if end is not None:
            params.append(("end", format_time(end)))
        params.extend(("match[]", m) for m in matches)
        if start is not None:
            params.append(("start", format_time(start)))
        return params  # already in url.Values.Encode's key order

    def _new_session(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self._config.max_connections,
            ssl=self._ssl if self._ssl is not None else True,
        )
        return aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=self._config.timeout),
            cookie_jar=aiohttp.DummyCookieJar(),  # Go's client keeps no cookies
        )

    def _headers(self, method: str) -> CIMultiDict[str]:
        headers = CIMultiDict(self._static_headers)
        auth = self._authorization()
        if auth is not None:
            headers["Authorization"] = auth
        if method == "POST":
            headers["Content-Type"] = _FORM  # Go uses Header.Set: replaces a user's value
        return headers

    def _authorization(self) -> str | None:
        if self._auth_header is not None:
            return self._auth_header
        token = self._token.current() if self._token is not None else ""
        if token:
            return f"Bearer {token}"
        return self._credential_auth.authorization() if self._credential_auth else None

    def _redact(self, text: str) -> str:
        """The one way an error message about Prometheus is cleaned of our credentials."""
        token = self._token.current() if self._token is not None else ""
        credentials = self._credentials.secrets() if self._credentials is not None else ()
        return redact(text, (*self._secrets, *secret_forms(token), *credentials))

    async def _refresh_credentials(self) -> None:
        """Run the kubeconfig's exec plugin; a new client certificate means new connections."""
        assert self._credentials is not None
        await self._credentials.refresh()
        if self._ssl is not None and self._credentials.ssl_context is not self._ssl:
            self._ssl = self._credentials.ssl_context
            if self._lean is not None:
                old, self._lean = self._lean, self._new_lean_pool()
                await old.close()

    async def _request(
        self,
        endpoint: str,
        params: list[tuple[str, str]],
        read: "AnswerReading[_T] | _Streamed[_T]",
        *,
        get_only: bool = False,
    ) -> _T:
        """Send a request and `read` its response, with one error model and one observer
        call for every endpoint and every way of reading the body. `get_only`: the endpoint
        answers GET only (405 to POST), whatever --prometheus-verb says."""
        method = "GET" if get_only else self._config.verb
        url = self._endpoints[endpoint]
        encoded = _encode(params)
        limit = 0 if get_only else self._config.max_get_url_length
        # len(url) + "?" + encoded: the URL is ASCII once encoded, so characters are bytes.
        if method == "GET" and limit and len(url) + 1 + len(encoded) > limit:
            method = "POST"
            if not self._post_logged:
                self._post_logged = True
                _log.info(
                    "sending Prometheus requests whose URL would exceed %d bytes as POST "
                    "(--prometheus-max-get-url-length)",
                    limit,
                )
        status: int | None = None
        error: PrometheusError | None = None
        completed = False  # stays False (and unobserved) when the caller cancels us
        max_size = self._config.max_response_size

        def fail(error_type: str, message: str) -> PrometheusError:
            return PrometheusError(
                self._redact(message),
                error_type=error_type,
                endpoint=endpoint,
                status=status,
                method=method,
                url=url,
            )

        if self._closed:
            raise RuntimeError(f"{type(self).__name__} is closed")
        started = _time.perf_counter()
        try:
            if self._credentials is not None and self._credentials.needs_refresh():
                await self._refresh_credentials()
            if self._lean is not None and not isinstance(read, _Streamed):
                reading = read

                def open_answer(head: ResponseHead) -> Answer[_T]:
                    return Answer(head, method, reading)

                async with asyncio.timeout(self._config.timeout):
                    head, answer = await self._lean.exchange(
                        self._lean_request(endpoint, method, encoded),
                        open_answer,
                        max_body_size=max_size,
                    )
                status = head.status
                if status not in _REDIRECTS:
                    result = answer.result()
                    completed = True
                    return result
                # aiohttp follows redirects as Go does: it sends this request again and, as
                # this server redirects, all later ones.
                _log.info("Prometheus answered %d; following redirects from now on", status)
                lean, self._lean = self._lean, None
                if lean is not None:
                    await lean.close()
            async with self._get_session().request(
                method,
                URL(f"{url}?{encoded}" if method == "GET" and encoded else url, encoded=True),
                data=encoded.encode() if method == "POST" else None,
                headers=self._headers(method),
                proxy=self._proxy,
                proxy_headers=self._proxy_headers,
                ssl=self._ssl if self._ssl is not None else True,
                server_hostname=self._tls_server_name(),
            ) as resp:
                status = resp.status
                if isinstance(read, _Streamed):
                    result = await read.read(resp, method)
                else:
                    result = await read_aiohttp_answer(resp, method, read, max_size)
            completed = True
            return result
        except PrometheusError as err:
            error = err
            raise
        except KubeAPIError as err:  # the kubeconfig's exec plugin failed
            error = fail("connection", f"unable to get credentials for Prometheus: {err}")
            raise error from None
        except ResponseProblem as err:
            error = fail(err.error_type, err.message)
            raise error from None
        except ResponseTooLarge as err:
            status = err.status
            error = fail("too_large", self._too_large(err))
            raise error from None
        except TimeoutError:
            # Before ClientError: aiohttp's timeout errors subclass both.
            error = fail("timeout", f"no response within {self._config.timeout:g}s")
            raise error from None
        except (aiohttp.ClientResponseError, ResponseFramingError) as err:
            # Too many redirects, bad headers, a response we cannot frame.
            detail = err.message if isinstance(err, aiohttp.ClientResponseError) else str(err)
            error = fail("bad_response", f"{type(err).__name__}: {detail}")
            raise error from None
        except (aiohttp.ClientError, OSError) as err:
            error = fail("connection", f"{type(err).__name__}: {err}")
            raise error from None
        finally:
            if status == 401 and self._credentials is not None:
                self._credentials.invalidate()  # client-go's exec authenticator does so
            elapsed = _time.perf_counter() - started
            _log.debug("%s %s %s (%.3fs)", method, url, status, elapsed)
            if self._observer is not None and (completed or error is not None):
                self._notify(endpoint, method, params, status, elapsed, error)

    @staticmethod
    def _too_large(err: ResponseTooLarge) -> str:
        """What `ResponseTooLarge` means here; names the flag and its value."""
        return (
            f"the answer is larger than {_MAX_RESPONSE_SIZE_FLAG}={format_size(err.limit)} "
            f"({err.limit} bytes); stopped reading at {err.size} bytes and closed the connection"
        )

    def _lean_request(self, endpoint: str, method: str, encoded: str) -> bytes:
        """The request as bytes for `Http1Pool`: the same headers `_headers` gives aiohttp."""
        path = self._lean_paths[endpoint]
        if method == "GET":
            head = f"GET {path}?{encoded} HTTP/1.1\r\n" if encoded else f"GET {path} HTTP/1.1\r\n"
            body = ""
        else:
            head = f"POST {path} HTTP/1.1\r\n"
            body = encoded
        auth = self._authorization()
        lines = [head, self._lean_headers[method]]
        if auth is not None:
            lines.append(f"Authorization: {auth}\r\n")
        if method == "POST":
            lines.append(f"Content-Type: {_FORM}\r\n")
        lines.append(self._lean_accept)
        if method == "POST":
            lines.append(f"Content-Length: {len(body)}\r\n")
        lines.append("\r\n")
        lines.append(body)
        return "".join(lines).encode()

    def _notify(
        self,
        endpoint: str,
        method: str,
        params: Sequence[tuple[str, str]],
        status: int | None,
        seconds: float,
        error: PrometheusError | None,
    ) -> None:
        assert self._observer is not None
        try:
            self._observer(endpoint, method, params, status, seconds, error)
        except Exception:  # a broken metrics hook must not fail the request
            _log.exception("Prometheus request observer failed")


async def _read_series(resp: aiohttp.ClientResponse, method: str, sink: SeriesSink) -> int:
    """A series body through SeriesStreamParser, `_STREAM_CHUNK` bytes at a time. Errors
    (not 2xx) and bodies that are not JSON by their Content-Type are small: they take the
    whole-body path, so that their errors are exactly decode_response's."""
    if resp.status // 100 != 2 or not is_json(resp.content_type):
        content = await resp.read()
        content_type = resp.headers.get("Content-Type", "")
        data, _ = decode_response(resp.status, resp.reason or "", content, content_type, method)
        series = parse_series_data(data)
        if series:
            sink(series)
        return len(series)
    parser = SeriesStreamParser(resp.headers.get("Content-Type", ""))
    count = 0
    async for chunk in resp.content.iter_chunked(_STREAM_CHUNK):
        batch = parser.feed(chunk)
        if batch:
            count += len(batch)
            sink(batch)
        # A chunk already buffered is returned without awaiting: yield anyway, so that a
        # fast Prometheus cannot keep the loop busy with one body for long.
        await asyncio.sleep(0)
    parser.finish()
    return count
