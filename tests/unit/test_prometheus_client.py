"""PrometheusClient against small fake Prometheus servers on 127.0.0.1 (no client mocking)."""

import asyncio
import base64
import functools
import gc
import math
import os
import re
import socket
import ssl
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from multidict import CIMultiDictProxy
from pytest_aiohttp import AiohttpServer
from yarl import URL

from adapter.kube.config import load_in_cluster
from adapter.prometheus import answers
from adapter.prometheus.answers import STREAM_THRESHOLD
from adapter.prometheus.client import (
    PrometheusClient,
    PrometheusConfig,
    PrometheusConfigError,
    PrometheusError,
    QueryResult,
    Sample,
    parse_header_flags,
)
from adapter.prometheus.config import (
    DEFAULT_MAX_RESPONSE_SIZE,
    canonical_header_key,
    format_size,
    parse_size,
)
from adapter.prometheus.query_stream import QueryStreamParser
from adapter.prometheus.results import decode_response, format_time, parse_query_data
from adapter.prometheus.transport import basic_auth, env_proxy, join_url_path
from harness.kubectl import write_kubeconfig
from harness.pki import CertificateAuthority

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Seen:
    """What the fake Prometheus received."""

    method: str
    path: str
    query_string: str
    body: bytes
    headers: CIMultiDictProxy[str]


@dataclass
class FakePrometheus:
    server: TestServer
    seen: list[Seen]

    def url(self, path: str = "") -> str:
        return str(self.server.make_url(path))


def prom_json(data: object, status: int = 200, warnings: list[str] | None = None) -> web.Response:
    doc: dict[str, object] = {"status": "success", "data": data}
    if warnings:
        doc["warnings"] = warnings
    return web.Response(body=orjson.dumps(doc), status=status, content_type="application/json")


def prom_error(status: int, error_type: str, error: str) -> web.Response:
    doc = {"status": "error", "errorType": error_type, "error": error}
    return web.Response(body=orjson.dumps(doc), status=status, content_type="application/json")


EMPTY_VECTOR = {"resultType": "vector", "result": []}


@pytest.fixture
def fake(aiohttp_server: AiohttpServer) -> Callable[..., Awaitable[FakePrometheus]]:
    async def start(
        respond: Handler | web.Response | None = None, ssl_context: ssl.SSLContext | None = None
    ) -> FakePrometheus:
        seen: list[Seen] = []

        async def handler(request: web.Request) -> web.StreamResponse:
            body = await request.read()
            seen.append(
                Seen(
                    request.method,
                    request.path,
                    request.rel_url.raw_query_string,
                    body,
                    request.headers,
                )
            )
            if respond is None:
                return prom_json(EMPTY_VECTOR)
            if isinstance(respond, web.Response):  # a Response can be sent only once: copy it
                return web.Response(
                    body=respond.body, status=respond.status, content_type=respond.content_type
                )
            return await respond(request)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        if ssl_context is None:
            server = await aiohttp_server(app)
        else:
            server = await aiohttp_server(app, ssl=ssl_context)
        return FakePrometheus(server, seen)

    return start


StartFake = Callable[..., Awaitable[FakePrometheus]]


def client_for(fp: FakePrometheus, **kwargs: object) -> PrometheusClient:
    return PrometheusClient(PrometheusConfig(url=fp.url(), **kwargs))  # type: ignore[arg-type]


# --- parsing ----------------------------------------------------------------------


async def test_vector_with_special_values_and_warnings(fake: StartFake) -> None:
    data = {
        "resultType": "vector",
        "result": [
            {"metric": {"__name__": "up", "pod": "a"}, "value": [1565786045.323, "1"]},
            {"metric": {"pod": "b"}, "value": [1565786045, "NaN"]},
            {"metric": {"pod": "c"}, "value": [1565786045, "+Inf"]},
            {"metric": {"pod": "d"}, "value": [1565786045, "-Inf"]},
            {"metric": {"pod": "e"}, "value": [1565786045, "1.5e3"]},
        ],
    }
    fp = await fake(prom_json(data, warnings=["results truncated"]))
    async with client_for(fp) as client:
        result = await client.query("up")
    assert result.result_type == "vector"
    assert result.warnings == ("results truncated",)
    first, nan, pinf, ninf, sci = result.samples
    assert first == Sample({"__name__": "up", "pod": "a"}, 1.0, 1565786045.323)
    assert math.isnan(nan.value) and nan.labels == {"pod": "b"}
    assert pinf.value == math.inf and ninf.value == -math.inf
    assert sci.value == 1500.0 and sci.timestamp == 1565786045.0


async def test_scalar_matrix_and_null_vector(fake: StartFake) -> None:
    answers = iter(
        [
            {"resultType": "scalar", "result": [1700000000.5, "42"]},
            {"resultType": "matrix", "result": [{"metric": {}, "values": [[1, "1"]]}]},
            {"resultType": "vector", "result": None},
        ]
    )

    async def respond(_: web.Request) -> web.Response:
        return prom_json(next(answers))

    fp = await fake(respond)
    async with client_for(fp) as client:
        scalar = await client.query("42")
        matrix = await client.query("up[1m]")
        empty = await client.query("nothing")
    assert scalar == QueryResult("scalar", (Sample({}, 42.0, 1700000000.5),))
    assert matrix.result_type == "matrix" and matrix.samples == ()
    assert matrix.raw_result == [{"metric": {}, "values": [[1, "1"]]}]
    assert empty == QueryResult("vector", ())


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(
            {"resultType": "vector", "result": [{"metric": {}, "value": [1]}]}, id="short-pair"
        ),
        pytest.param(
            {"resultType": "vector", "result": [{"metric": {}, "value": [1, "x"]}]}, id="bad-number"
        ),
        pytest.param({"resultType": "vector", "result": {}}, id="result-object"),
        pytest.param({"resultType": "weird", "result": []}, id="unknown-type"),
        pytest.param([], id="data-array"),
        pytest.param(None, id="data-null"),
    ],
)
async def test_malformed_query_data_is_bad_response(fake: StartFake, data: object) -> None:
    fp = await fake(prom_json(data))
    async with client_for(fp) as client:
        with pytest.raises(PrometheusError) as info:
            await client.query("up")
    assert info.value.error_type == "bad_response"
    assert info.value.status == 200
    assert "/api/v1/query" in str(info.value)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        pytest.param(1565786045.323, "1565786045.323", id="millis"),
        pytest.param(1565786045.32, "1565786045.32", id="trailing-zero-dropped"),
        pytest.param(1565786045.0, "1565786045", id="whole"),
        pytest.param(1565786045.0004, "1565786045", id="sub-milli-rounded"),
        pytest.param(0.001, "0.001", id="one-milli"),
        pytest.param(-1.5, "-1.5", id="negative"),
    ],
)
def test_format_time_matches_go_model_time(seconds: float, text: str) -> None:
    assert format_time(seconds) == text


# --- request encoding -------------------------------------------------------------

GO_ENCODED_QUERY = (
    "query=sum%28rate%28http_requests_total%7Bpod%3D~%22a%7Cb%22%2Cns%3D%22x+y%22%7D%5B5m%5D%29%29"
    "&time=1565786045.323&timeout=2s"
)


async def test_answers_are_asked_for_uncompressed_unless_a_header_says_otherwise(
    fake: StartFake,
) -> None:
    fp = await fake()
    async with client_for(fp) as client:
        await client.query("up")
    headers = parse_header_flags(["Accept-Encoding=gzip"])
    async with client_for(fp, headers=headers) as client:
        await client.query("up")
    assert [seen.headers["Accept-Encoding"] for seen in fp.seen] == ["identity", "gzip"]


async def test_metric_names_are_always_a_get(fake: StartFake) -> None:
    fp = await fake(prom_json(["up", "http_requests_total"]))
    async with client_for(fp, verb="POST") as client:
        names = await client.metric_names(['{job="a"}'], start=1700000000)
    (seen,) = fp.seen
    assert names == ["up", "http_requests_total"]
    assert (seen.method, seen.path) == ("GET", "/api/v1/label/__name__/values")
    assert seen.query_string == "match%5B%5D=%7Bjob%3D%22a%22%7D&start=1700000000"


async def test_get_puts_go_encoded_params_in_url(fake: StartFake) -> None:
    fp = await fake()
    async with client_for(fp, timeout=2.0) as client:
        await client.query(
            'sum(rate(http_requests_total{pod=~"a|b",ns="x y"}[5m]))', 1565786045.323
        )
    (seen,) = fp.seen
    assert (seen.method, seen.path, seen.body) == ("GET", "/api/v1/query", b"")
    assert seen.query_string == GO_ENCODED_QUERY


async def test_post_sends_form_body(fake: StartFake) -> None:
    fp = await fake()
    async with client_for(fp, verb="POST", timeout=2.0) as client:
        await client.query(
            'sum(rate(http_requests_total{pod=~"a|b",ns="x y"}[5m]))', 1565786045.323
        )
    (seen,) = fp.seen
    assert (seen.method, seen.path, seen.query_string) == ("POST", "/api/v1/query", "")
    assert seen.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert seen.body.decode() == GO_ENCODED_QUERY


@pytest.mark.parametrize("verb", ["GET", "POST"])
async def test_series_repeats_match_and_returns_label_sets(fake: StartFake, verb: str) -> None:
    series = [{"__name__": "up", "job": "a"}, {"__name__": "http_requests_total", "pod": "p"}]
    fp = await fake(prom_json(series))
    async with client_for(fp, verb=verb) as client:
        got = await client.series(['{__name__=~"^container_.*"}', "up"], start=1700000000.25)
    assert got == series
    (seen,) = fp.seen
    assert seen.path == "/api/v1/series"
    sent = seen.query_string if verb == "GET" else seen.body.decode()
    assert sent == (
        "match%5B%5D=%7B__name__%3D~%22%5Econtainer_.%2A%22%7D&match%5B%5D=up&start=1700000000.25"
    )


async def test_labels_with_range(fake: StartFake) -> None:
    fp = await fake(prom_json(["__name__", "job"]))
    async with client_for(fp) as client:
        assert await client.labels(["up"], start=10, end=20) == ["__name__", "job"]
        assert await client.labels() == ["__name__", "job"]
    assert [(s.path, s.query_string) for s in fp.seen] == [
        ("/api/v1/labels", "end=20&match%5B%5D=up&start=10"),
        ("/api/v1/labels", ""),
    ]


async def test_series_rejects_a_bare_string() -> None:
    client = PrometheusClient(PrometheusConfig(url="http://127.0.0.1:1"))
    with pytest.raises(TypeError):
        await client.series("up")
    await client.close()


@pytest.mark.parametrize(
    ("suffix", "path"),
    [
        pytest.param("", "/api/v1/query", id="no-path"),
        pytest.param("/", "/api/v1/query", id="root"),
        pytest.param("/prom", "/prom/api/v1/query", id="prefix"),
        pytest.param("/prom/", "/prom/api/v1/query", id="prefix-slash"),
        pytest.param(
            "/select/0/prometheus?tenant=x#frag",
            "/select/0/prometheus/api/v1/query",
            id="query-dropped",
        ),
        pytest.param("//a/./b/../c/", "/a/c/api/v1/query", id="cleaned"),
    ],
)
async def test_endpoint_joined_onto_base_path(fake: StartFake, suffix: str, path: str) -> None:
    fp = await fake()
    base = fp.url().rstrip("/") + suffix
    async with PrometheusClient(PrometheusConfig(url=base)) as client:
        await client.query("up")
    (seen,) = fp.seen
    assert seen.path == path
    assert seen.query_string == "query=up&timeout=10s"


@pytest.mark.parametrize(
    ("base", "endpoint", "joined"),
    [
        ("", "/api/v1/query", "/api/v1/query"),
        ("/prom", "/api/v1/query", "/prom/api/v1/query"),
        ("//", "/api/v1/query", "/api/v1/query"),
    ],
)
def test_join_url_path_is_go_path_join(base: str, endpoint: str, joined: str) -> None:
    assert join_url_path(base, endpoint) == joined


# --- headers and auth -------------------------------------------------------------


def test_parse_header_flags_go_semantics() -> None:
    flags = ["x-scope-orgid=tenant-a", "X-MULTI=1", "x-multi=2", "X-Empty", "k=a=b", "V= padded "]
    assert parse_header_flags(flags) == (
        ("X-Scope-Orgid", "tenant-a"),
        ("X-Multi", "1"),
        ("X-Multi", "2"),
        ("X-Empty", ""),
        ("K", "a=b"),
        ("V", "padded"),
    )
    assert canonical_header_key("content-md5") == "Content-Md5"
    assert canonical_header_key("bad key") == "bad key"  # Go leaves invalid keys alone


@pytest.mark.parametrize(
    ("flag", "needle"),
    [
        pytest.param("=secret", "empty header name", id="empty-key"),
        pytest.param("", "empty header name", id="empty-flag"),
        pytest.param("Bad Key=secret", "'Bad Key'", id="space-in-key"),
        pytest.param("K=a\nb", "line break", id="newline-value"),
    ],
)
def test_parse_header_flags_errors(flag: str, needle: str) -> None:
    with pytest.raises(ValueError, match="--prometheus-header") as info:
        parse_header_flags([flag])
    assert needle in str(info.value)
    assert "secret" not in str(info.value)


async def test_headers_reach_server(fake: StartFake) -> None:
    fp = await fake()
    headers = parse_header_flags(["x-scope-orgid=tenant-a", "X-Multi=1", "X-Multi=2", "X-Empty"])
    async with client_for(fp, headers=headers) as client:
        await client.query("up")
    got = fp.seen[0].headers
    assert got["X-Scope-Orgid"] == "tenant-a"
    assert got.getall("X-Multi") == ["1", "2"]
    assert got["X-Empty"] == ""
    assert "Authorization" not in got
    assert got["User-Agent"].startswith("prometheus-adapter-py/")


async def test_bearer_token_file_and_rotation(fake: StartFake, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("first-token\n")
    fp = await fake()
    async with client_for(fp, token_file=str(token_file)) as client:
        await client.query("up")
        # Kubernetes-style rotation: a new file swapped in atomically.
        new = tmp_path / "token.new"
        new.write_text("second-token")
        os.replace(new, token_file)
        await client.query("up")
        # In-place rewrite with the same length, possibly within one mtime tick.
        token_file.write_text("third--token")
        await client.query("up")
        # A vanished file keeps the last good token rather than failing requests.
        token_file.unlink()
        await client.query("up")
    assert [s.headers["Authorization"] for s in fp.seen] == [
        "Bearer first-token",
        "Bearer second-token",
        "Bearer third--token",
        "Bearer third--token",
    ]


async def test_explicit_authorization_header_wins_over_token(
    fake: StartFake, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("file-token")
    fp = await fake()
    headers = parse_header_flags(["Authorization=Basic abc"])
    async with client_for(fp, headers=headers, token_file=str(token_file)) as client:
        await client.query("up")
    assert fp.seen[0].headers.getall("Authorization") == ["Basic abc"]


async def test_token_and_url_password_never_in_errors(fake: StartFake, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("s3cr3t-token")

    async def echo(request: web.Request) -> web.Response:
        return web.Response(status=500, text=f"denied {request.headers['Authorization']}")

    fp = await fake(echo)
    async with client_for(fp, token_file=str(token_file)) as client:
        with pytest.raises(PrometheusError) as info:
            await client.query("up")
    assert "s3cr3t-token" not in str(info.value)
    assert "<redacted>" in str(info.value)

    port = fp.server.port
    creds = PrometheusConfig(url=f"http://alice:hunter2@127.0.0.1:{port}/prom")
    async with PrometheusClient(creds) as client:
        with pytest.raises(PrometheusError) as info:
            await client.query("up")
    assert fp.seen[-1].headers["Authorization"] == "Basic YWxpY2U6aHVudGVyMg=="
    assert "hunter2" not in str(info.value) and "alice" not in str(info.value)
    assert f"http://127.0.0.1:{port}/prom/api/v1/query" in str(info.value)


def echoing(answer: Callable[[str, web.Request], web.Response]) -> Handler:
    """An upstream that puts the request's credential into its error answer."""

    async def echo(request: web.Request) -> web.Response:
        headers = request.headers
        credential = headers.get("Authorization", "") or headers.get("Proxy-Authorization", "")
        return answer(credential, request)

    return echo


def echo_as_query_asks(credential: str, request: web.Request) -> web.Response:
    """How the credential comes back, by the query sent: in a text body cut short in
    the error message, in a JSON error, decoded, in the status line's reason."""
    scheme, _, value = credential.partition(" ")
    decoded = base64.b64decode(value).decode() if scheme == "Basic" else value
    user, _, password = decoded.partition(":")
    match request.query.get("query"):
        case "cut":  # the message quotes the first 100 characters: the cut splits the value
            return web.Response(status=500, text=f"{'x' * 88} {credential}")
        case "json":
            error = f"denied {credential}, that is {decoded}, {password} or {quote(password)}"
            return prom_error(422, "bad_data", error)
        case "reason":
            return web.Response(status=403, reason=f"Forbidden {credential}")
        case _:
            return web.Response(status=500, text=f"denied {credential} ({user}:{password})")


ECHO_QUERIES = ("cut", "json", "reason", "text")


async def errors_for(client: PrometheusClient) -> list[str]:
    messages = []
    for query in ECHO_QUERIES:
        with pytest.raises(PrometheusError) as info:
            await client.query(query)
        messages.append(str(info.value))
    return messages


def assert_hidden(messages: Sequence[str], secrets: Sequence[str]) -> None:
    for message in messages:
        assert "<redacted>" in message, message
        for secret in secrets:
            # Also no start of one left by a cut (the shortest a cut removes: 4 characters).
            assert secret[:6] not in message, (secret, message)


async def test_url_credentials_are_redacted_in_every_form_sent(fake: StartFake) -> None:
    password = "hunter2/p@ss:w"
    fp = await fake(echoing(echo_as_query_asks))
    encoded = quote(password, safe="")
    url = fp.url("/prom").replace("http://", f"http://alice:{encoded}@")
    async with PrometheusClient(PrometheusConfig(url=url)) as client:
        messages = await errors_for(client)
    sent = base64.b64encode(f"alice:{password}".encode()).decode()
    assert fp.seen[-1].headers["Authorization"] == f"Basic {sent}"
    assert_hidden(messages, [password, encoded, sent])
    assert all("alice:" not in m for m in messages)


async def test_header_and_token_file_credentials_are_redacted(
    fake: StartFake, tmp_path: Path
) -> None:
    fp = await fake(echoing(echo_as_query_asks))
    headers = parse_header_flags(["Authorization=Bearer hdr-token-1234", "X-Scope-OrgID=tenant"])
    async with client_for(fp, headers=headers) as client:
        messages = await errors_for(client)
    assert_hidden(messages, ["hdr-token-1234"])
    assert all("Bearer <redacted>" in m for m in messages if "denied" in m)

    async def echo_headers(request: web.Request) -> web.Response:
        key, tenant = request.headers["X-Api-Key"], request.headers["X-Scope-OrgID"]
        return web.Response(status=500, text=f"key {key} of tenant {tenant}")

    fp = await fake(echo_headers)
    headers = parse_header_flags(["X-Api-Key=key-5678-abcd", "X-Scope-OrgID=tenant-a"])
    async with client_for(fp, headers=headers) as client:
        with pytest.raises(PrometheusError) as info:
            await client.query("up")
    assert_hidden([str(info.value)], ["key-5678-abcd"])
    assert "of tenant tenant-a" in str(info.value)  # a tenant is not a secret

    token_file = tmp_path / "token"
    token_file.write_text("file-token-9876")
    fp = await fake(echoing(echo_as_query_asks))
    async with client_for(fp, token_file=str(token_file)) as client:
        assert_hidden(await errors_for(client), ["file-token-9876"])


async def test_proxy_credentials_are_redacted(
    fake: StartFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    fp = await fake(echoing(echo_as_query_asks))  # the proxy, answering every request itself
    monkeypatch.setenv("HTTP_PROXY", fp.url().replace("http://", "http://proxyuser:proxy-pw@"))
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    async with PrometheusClient(PrometheusConfig(url="http://prometheus.example:9090")) as client:
        messages = await errors_for(client)
    assert fp.seen[-1].headers["Proxy-Authorization"] == "Basic cHJveHl1c2VyOnByb3h5LXB3"
    assert_hidden(messages, ["proxy-pw", "cHJveHl1c2VyOnByb3h5LXB3"])


async def test_proxy_from_environment(fake: StartFake, monkeypatch: pytest.MonkeyPatch) -> None:
    fp = await fake()
    proxy = fp.url().replace("http://", "http://proxyuser:proxypw@")
    monkeypatch.setenv("HTTP_PROXY", proxy)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    async with PrometheusClient(PrometheusConfig(url="http://prometheus.example:9090/prom")) as c:
        await c.query("up")
    (seen,) = fp.seen
    assert (seen.path, seen.headers["Host"]) == ("/prom/api/v1/query", "prometheus.example:9090")
    assert seen.headers["Proxy-Authorization"] == "Basic cHJveHl1c2VyOnByb3h5cHc="


@pytest.mark.parametrize(
    ("url", "no_proxy", "proxied"),
    [
        pytest.param("http://prom.monitoring.svc:9090", "", True, id="proxied"),
        pytest.param("http://prom.monitoring.svc:9090", ".svc,10.0.0.0/8", False, id="suffix"),
        pytest.param("http://svc:9090", ".svc", True, id="dot-suffix-not-bare"),
        pytest.param("http://monitoring.svc", "monitoring.svc:9090", False, id="host-port"),
        pytest.param("http://10.1.2.3:9090", "10.0.0.0/8", False, id="cidr"),
        pytest.param("http://prom:9090", "*", False, id="star"),
        pytest.param("http://localhost:9090", "", False, id="localhost"),
        pytest.param("http://[::1]:9090", "", False, id="loopback-v6"),
        pytest.param("https://prom:9090", "", False, id="no-https-proxy-set"),
    ],
)
def test_env_proxy_rules(
    monkeypatch: pytest.MonkeyPatch, url: str, no_proxy: str, proxied: bool
) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "NO_PROXY", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", "proxy.corp:3128")
    monkeypatch.setenv("no_proxy", no_proxy)
    proxy, auth = env_proxy(URL(url))
    assert (str(proxy) if proxy else None) == ("http://proxy.corp:3128" if proxied else None)
    assert auth is None


# --- error model ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error_type", "message"),
    [
        (400, "bad_data", 'invalid parameter "query": 1:3: parse error: unexpected end of input'),
        (422, "execution", "query processing would load too many samples into memory"),
        (503, "unavailable", "too many concurrent queries"),
        (200, "timeout", "query timed out in expression evaluation"),
    ],
)
async def test_json_error_bodies(
    fake: StartFake, status: int, error_type: str, message: str
) -> None:
    fp = await fake(prom_error(status, error_type, message))
    async with client_for(fp) as client:
        with pytest.raises(PrometheusError) as info:
            await client.query("up")
    err = info.value
    assert (err.error_type, err.message, err.status) == (error_type, message, status)
    assert (err.endpoint, err.method) == ("/api/v1/query", "GET")
    assert str(err).startswith(f"{error_type}: {message} (HTTP {status} from GET http://")


def test_error_str_without_location() -> None:
    err = PrometheusError("connection refused", error_type="connection")
    assert str(err) == "connection: connection refused"
    assert (err.status, err.endpoint) == (None, "")
    located = PrometheusError("boom", error_type="execution", status=422, endpoint="/api/v1/query")
    assert str(located) == "execution: boom (HTTP 422 from /api/v1/query)"


async def test_html_body_is_bad_response(fake: StartFake) -> None:
    page = "<html><head><title>Sign in</title></head><body>" + "x" * 200 + "</body></html>"
    fp = await fake(web.Response(text=page, content_type="text/html"))
    async with client_for(fp) as client:
        with pytest.raises(PrometheusError) as info:
            await client.series(["up"])
    err = info.value
    assert (err.error_type, err.status, err.endpoint) == ("bad_response", 200, "/api/v1/series")
    assert "not JSON" in err.message and "text/html" in err.message
    assert "<html><head><title>Sign in" in err.message
    assert "x" * 150 not in err.message  # only the start of the body is quoted


@pytest.mark.parametrize(
    ("status", "verb", "hint"),
    [
        pytest.param(404, "GET", "path prefix", id="404"),
        pytest.param(414, "GET", "--prometheus-verb=POST", id="414"),
        pytest.param(502, "POST", "Bad Gateway", id="502"),
    ],
)
async def test_unexpected_status_is_unknown_response_code(
    fake: StartFake, status: int, verb: str, hint: str
) -> None:
    fp = await fake(web.Response(status=status, text="upstream says no"))
    async with client_for(fp, verb=verb) as client:
        with pytest.raises(PrometheusError) as info:
            await client.query("up")
    err = info.value
    assert (err.error_type, err.status) == ("bad_response", status)
    assert err.message.startswith(f"unknown response code {status}")
    assert hint in err.message and "upstream says no" in err.message
    assert str(err).startswith(f"bad_response: unknown response code {status}")


async def test_timeout_is_bounded(fake: StartFake) -> None:
    release = asyncio.Event()

    async def hang(_: web.Request) -> web.Response:
        await release.wait()
        return prom_json(EMPTY_VECTOR)

    fp = await fake(hang)
    try:
        async with client_for(fp, timeout=0.2) as client:
            started = time.monotonic()
            with pytest.raises(PrometheusError) as info:
                await client.query("up")
            elapsed = time.monotonic() - started
    finally:
        release.set()
    assert info.value.error_type == "timeout" and info.value.status is None
    assert 0.15 < elapsed < 1.0
    assert "0.2s" in str(info.value)


async def test_connection_refused() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with PrometheusClient(PrometheusConfig(url=f"http://127.0.0.1:{port}/prom")) as client:
        with pytest.raises(PrometheusError) as info:
            await client.query("up")
    err = info.value
    assert (err.error_type, err.status) == ("connection", None)
    assert f"http://127.0.0.1:{port}/prom/api/v1/query" in str(err)


async def test_redirects_are_followed(fake: StartFake) -> None:
    async def respond(request: web.Request) -> web.Response:
        if request.path.startswith("/old/"):
            raise web.HTTPFound(f"/new/api/v1/query?{request.rel_url.raw_query_string}")
        return prom_json({"resultType": "vector", "result": []})

    fp = await fake(respond)
    async with PrometheusClient(PrometheusConfig(url=fp.url("/old"))) as client:
        for _ in range(2):
            assert (await client.query("up")).samples == ()
    # The first redirect is seen twice: once by the lean client, which hands over to aiohttp.
    assert [s.path.split("/")[1] for s in fp.seen] == ["old", "old", "new", "old", "new"]


async def test_an_answer_that_is_not_http_is_a_bad_response() -> None:
    async def garble(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n")
        await writer.drain()

    server = await asyncio.start_server(garble, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server, PrometheusClient(PrometheusConfig(url=f"http://127.0.0.1:{port}")) as c:
        with pytest.raises(PrometheusError) as info:
            await c.query("up")
    assert (info.value.error_type, info.value.status) == ("bad_response", None)
    assert "malformed response" in str(info.value)


@dataclass
class Call:
    endpoint: str
    method: str
    params: list[tuple[str, str]]
    status: int | None
    seconds: float
    error: PrometheusError | None


class Observed:
    """A RequestObserver that records every call."""

    def __init__(self) -> None:
        self.calls: list[Call] = []

    def __call__(
        self,
        endpoint: str,
        method: str,
        params: Sequence[tuple[str, str]],
        status: int | None,
        seconds: float,
        error: PrometheusError | None,
    ) -> None:
        self.calls.append(Call(endpoint, method, list(params), status, seconds, error))


async def test_observer_sees_every_request(fake: StartFake) -> None:
    observer = Observed()
    answers = iter([prom_json(EMPTY_VECTOR), prom_error(422, "execution", "boom")])

    async def respond(_: web.Request) -> web.Response:
        return next(answers)

    fp = await fake(respond)
    async with PrometheusClient(PrometheusConfig(url=fp.url()), observer=observer) as client:
        await client.query("up", 1.5)
        with pytest.raises(PrometheusError):
            await client.series(["up"])
    calls = [
        (c.endpoint, c.method, c.params, c.status, c.seconds, c.error and c.error.error_type)
        for c in observer.calls
    ]
    (ok_endpoint, ok_method, ok_params, ok_status, ok_seconds, ok_error) = calls[0]
    assert (ok_endpoint, ok_method, ok_status, ok_error) == ("/api/v1/query", "GET", 200, None)
    assert ok_params == [("query", "up"), ("time", "1.5"), ("timeout", "10s")]
    assert 0 < ok_seconds < 1
    assert calls[1][0] == "/api/v1/series" and calls[1][3] == 422 and calls[1][5] == "execution"


async def test_broken_observer_does_not_fail_requests(fake: StartFake) -> None:
    def observer(
        endpoint: str,
        method: str,
        params: Sequence[tuple[str, str]],
        status: int | None,
        seconds: float,
        error: PrometheusError | None,
    ) -> None:
        raise RuntimeError("metrics hook bug")

    fp = await fake()
    async with PrometheusClient(PrometheusConfig(url=fp.url()), observer=observer) as client:
        assert (await client.query("up")).result_type == "vector"


# --- TLS --------------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A throwaway CA, a server cert for 127.0.0.1 and a client cert (EC keys: fast)."""
    out = tmp_path_factory.mktemp("pki")
    ca = CertificateAuthority("test-ca")
    server_cert, server_key = ca.issue_server(("127.0.0.1",)).write(out, "server")
    client_cert, client_key = ca.issue_client("c").write(out, "client")
    return Pki(ca.write(out, "ca"), server_cert, server_key, client_cert, client_key)


def _server_tls(pki: Pki, *, require_client_cert: bool = False) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(pki.server_cert, pki.server_key)
    if require_client_cert:
        ctx.load_verify_locations(cafile=pki.ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


async def test_tls_with_ca_file(fake: StartFake, pki: Pki) -> None:
    fp = await fake(ssl_context=_server_tls(pki))
    assert fp.url().startswith("https://127.0.0.1:")
    async with client_for(fp, ca_file=str(pki.ca)) as client:
        assert (await client.query("up")).result_type == "vector"
    async with client_for(fp) as client:  # system trust store: our CA is unknown
        with pytest.raises(PrometheusError) as info:
            await client.query("up")
    assert info.value.error_type == "connection"
    assert "certificate" in str(info.value).lower()


async def test_mutual_tls_only_with_ca_file(fake: StartFake, pki: Pki) -> None:
    fp = await fake(ssl_context=_server_tls(pki, require_client_cert=True))
    pair = {"client_cert_file": str(pki.client_cert), "client_key_file": str(pki.client_key)}
    async with client_for(fp, ca_file=str(pki.ca), **pair) as client:
        assert (await client.query("up")).result_type == "vector"
    async with client_for(fp, ca_file=str(pki.ca)) as client:  # no client cert: rejected
        with pytest.raises(PrometheusError) as info:
            await client.query("up")
    assert info.value.error_type == "connection"


# --- configuration and lifecycle --------------------------------------------------


@pytest.mark.parametrize(
    ("config", "needle"),
    [
        pytest.param(
            PrometheusConfig(verb="get"), 'unsupported Prometheus HTTP verb "get"', id="verb"
        ),
        pytest.param(
            PrometheusConfig(url="localhost:9090"), "invalid Prometheus URL", id="no-scheme"
        ),
        pytest.param(
            PrometheusConfig(url="http://u:pw@/x"), "invalid Prometheus URL", id="no-host"
        ),
        pytest.param(PrometheusConfig(timeout=0), "timeout", id="timeout"),
        pytest.param(
            PrometheusConfig(token_file="/nonexistent/token"),
            "failed to read prometheus-token-file",
            id="token",
        ),
        pytest.param(
            PrometheusConfig(ca_file="/nonexistent/ca.crt"),
            "failed to read prometheus-ca-file",
            id="ca-missing",
        ),
    ],
)
def test_config_errors(config: PrometheusConfig, needle: str) -> None:
    with pytest.raises(PrometheusConfigError) as info:
        PrometheusClient(config)
    assert needle in str(info.value)
    assert "pw" not in str(info.value)


def test_ca_file_without_certs_and_bad_key_pair(tmp_path: Path, pki: Pki) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    with pytest.raises(PrometheusConfigError, match="no certs found in prometheus-ca-file"):
        PrometheusClient(PrometheusConfig(ca_file=str(junk)))
    mismatched = PrometheusConfig(
        ca_file=str(pki.ca),
        client_cert_file=str(pki.client_cert),
        client_key_file=str(pki.server_key),
    )
    with pytest.raises(PrometheusConfigError, match="failed to read TLS key pair"):
        PrometheusClient(mismatched)


def test_constructed_without_a_running_loop() -> None:
    client = PrometheusClient(PrometheusConfig(url="http://prometheus.monitoring.svc:9090"))
    assert client is not None  # the aiohttp session is only created on first use


async def test_closed_client_refuses_requests(fake: StartFake) -> None:
    fp = await fake()
    client = client_for(fp)
    await client.query("up")
    await client.close()
    await client.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        await client.query("up")


# --- automatic POST for long GET requests -----------------------------------------


def _long_query(pods: int) -> str:
    names = "|".join(f"pod-{i}" for i in range(pods))
    return f'sum(irate(http_requests_total{{namespace="ns-0",pod=~"{names}"}}[1m])) by (pod)'


async def test_long_get_is_sent_as_post(fake: StartFake, caplog: pytest.LogCaptureFixture) -> None:
    observer = Observed()
    fp = await fake()
    config = PrometheusConfig(url=fp.url(), max_get_url_length=1000)
    caplog.set_level("INFO", logger="adapter.prometheus.client")
    async with PrometheusClient(config, observer=observer) as client:
        await client.query("up")
        await client.query(_long_query(200), 1.5)
        await client.query(_long_query(300))
        with pytest.raises(PrometheusError, match="from POST"):  # the fake answers a vector
            await client.series([_long_query(200)])
    assert [s.method for s in fp.seen] == ["GET", "POST", "POST", "POST"]
    assert [c.method for c in observer.calls] == ["GET", "POST", "POST", "POST"]
    long_post = fp.seen[1]
    assert long_post.query_string == ""
    assert long_post.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert URL(f"/?{long_post.body.decode()}").query["query"] == _long_query(200)
    assert "Content-Type" not in fp.seen[0].headers
    switches = [r for r in caplog.records if "as POST" in r.getMessage()]
    assert len(switches) == 1 and switches[0].levelname == "INFO"  # once per client


async def test_get_url_length_boundary(fake: StartFake) -> None:
    fp = await fake()
    query = _long_query(50)
    url_length = len(fp.url("/api/v1/query")) + 1 + len(f"query={quote_plus(query)}&timeout=10s")
    for limit, method in ((url_length, "GET"), (url_length - 1, "POST"), (0, "GET")):
        async with client_for(fp, max_get_url_length=limit) as client:
            await client.query(query)
        assert fp.seen[-1].method == method, limit
    assert len(fp.url("/api/v1/query") + "?" + fp.seen[0].query_string) == url_length


async def test_configured_post_unchanged_by_url_limit(fake: StartFake) -> None:
    fp = await fake()
    async with client_for(fp, verb="POST", max_get_url_length=10) as client:
        await client.query("up")
    assert fp.seen[0].method == "POST"


def test_negative_max_get_url_length_is_rejected() -> None:
    with pytest.raises(PrometheusConfigError, match="GET URL length"):
        PrometheusClient(PrometheusConfig(max_get_url_length=-1))


# --- streaming series -------------------------------------------------------------


class Batches:
    """A stream_series sink that keeps what it was given."""

    def __init__(self) -> None:
        self.batches: list[list[dict[str, str]]] = []

    def __call__(self, batch: list[dict[str, str]]) -> None:
        self.batches.append(batch)

    @property
    def series(self) -> list[dict[str, str]]:
        return [labels for batch in self.batches for labels in batch]


def many_series(count: int) -> list[dict[str, str]]:
    return [
        {
            "__name__": "container_cpu_usage_seconds_total",
            "container": "app",
            "namespace": f"ns-{index % 7}",
            "pod": f"app-{index}",
            "tricky": '"},{"pod":"fake"},{' if index % 3 else "é😀\\",
        }
        for index in range(count)
    ]


async def trickle(request: web.Request, body: bytes, piece: int = 1000) -> web.StreamResponse:
    """Send `body` chunked, a piece at a time, as a slow Prometheus would."""
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    for start in range(0, len(body), piece):
        await response.write(body[start : start + piece])
    await response.write_eof()
    return response


@pytest.mark.parametrize("verb", ["GET", "POST"])
async def test_stream_series_sends_the_request_series_sends(fake: StartFake, verb: str) -> None:
    series = [{"__name__": "up", "job": "a"}, {"__name__": "http_requests_total", "pod": "p"}]
    fp = await fake(prom_json(series))
    headers = parse_header_flags(["X-Scope-OrgID=tenant"])
    async with client_for(fp, verb=verb, headers=headers) as client:
        listed = await client.series(["up", '{pod=~"a|b"}'], start=1700000000.25, end=1700000300)
        sink = Batches()
        count = await client.stream_series(
            ["up", '{pod=~"a|b"}'], start=1700000000.25, end=1700000300, sink=sink
        )
    assert listed == sink.series == series and count == 2
    old, new = fp.seen
    assert (new.method, new.path, new.query_string, new.body) == (
        old.method,
        old.path,
        old.query_string,
        old.body,
    )
    assert list(new.headers.items()) == list(old.headers.items())
    assert new.method == verb and new.headers["X-Scope-Orgid"] == "tenant"
    # Uncompressed: parsing as the body streams in keeps memory flat either way, and on
    # loopback gzip costs more CPU (Prometheus' and ours) than it saves.
    assert new.headers["Accept-Encoding"] == "identity"


async def test_stream_series_hands_over_batches_as_the_body_arrives(fake: StartFake) -> None:
    series = many_series(5000)
    body = orjson.dumps({"status": "success", "data": series, "warnings": ["w"]})
    assert len(body) > 8 * 64 * 1024

    async def respond(request: web.Request) -> web.StreamResponse:
        return await trickle(request, body)

    fp = await fake(respond)
    sink = Batches()
    async with client_for(fp) as client:
        assert await client.stream_series(["up"], sink=sink) == 5000
    assert sink.series == series
    assert len(sink.batches) >= 8 and all(sink.batches)


async def test_stream_series_reads_gzip_when_a_header_asks_for_it(fake: StartFake) -> None:
    series = many_series(2000)

    async def respond(request: web.Request) -> web.Response:
        response = prom_json(series)
        if "gzip" in request.headers.get("Accept-Encoding", ""):
            response.enable_compression(web.ContentCoding.gzip)
        return response

    fp = await fake(respond)
    sink = Batches()
    headers = parse_header_flags(["Accept-Encoding=gzip"])
    async with client_for(fp, headers=headers) as client:
        assert await client.stream_series(["up"], sink=sink) == 2000
        assert await client.series(["up"]) == series
    assert sink.series == series
    assert [s.headers["Accept-Encoding"] for s in fp.seen] == ["gzip", "gzip"]


async def test_stream_series_empty_and_not_json_content_type(fake: StartFake) -> None:
    answers = iter(
        [
            prom_json([]),
            # A body that is JSON under another Content-Type: read whole, as series() does.
            web.Response(
                body=orjson.dumps({"status": "success", "data": [{"a": "b"}]}),
                content_type="text/plain",
            ),
        ]
    )

    async def respond(_: web.Request) -> web.Response:
        return next(answers)

    fp = await fake(respond)
    sink = Batches()
    async with client_for(fp) as client:
        assert await client.stream_series(["up"], sink=sink) == 0
        assert sink.batches == []
        assert await client.stream_series(["up"], sink=sink) == 1
    assert sink.batches == [[{"a": "b"}]]


async def test_stream_series_switches_to_post_like_series(fake: StartFake) -> None:
    observer = Observed()
    fp = await fake(prom_json([{"__name__": "up"}]))
    config = PrometheusConfig(url=fp.url(), max_get_url_length=1000)
    async with PrometheusClient(config, observer=observer) as client:
        await client.series(["up"], start=5)
        await client.stream_series(["up"], start=5, sink=Batches())
        await client.series([_long_query(200)], start=5)
        await client.stream_series([_long_query(200)], start=5, sink=Batches())
    assert [s.method for s in fp.seen] == ["GET", "GET", "POST", "POST"]
    assert fp.seen[2].body == fp.seen[3].body
    methods = [(c.endpoint, c.method, c.params, c.status) for c in observer.calls]
    short = ("/api/v1/series", "GET", [("match[]", "up"), ("start", "5")], 200)
    assert methods[0] == methods[1] == short
    assert methods[2] == methods[3]
    assert methods[3][:2] == ("/api/v1/series", "POST")


JSON = "application/json"
STREAM_ERRORS = {
    "422": (422, b'{"status":"error","errorType":"execution","error":"too many"}', JSON),
    "200-error": (200, b'{"status":"error","errorType":"timeout","error":"timed out"}', JSON),
    "error-after-data": (200, b'{"data":[{"a":"b"}],"status":"error","error":"x"}', JSON),
    "503-html": (503, b"<html>upstream down</html>", "text/html"),
    "200-html": (200, b"<html>Sign in</html>", "text/html"),
    "json-type-html-body": (200, b"<html>Sign in</html>", JSON),
    "data-object": (200, b'{"status":"success","data":{"a":"b"}}', JSON),
    "no-data": (200, b'{"status":"success"}', JSON),
    "element-number": (200, b'{"status":"success","data":[{"a":"b"},7]}', JSON),
    "not-an-object": (200, b'[{"a":"b"}]', JSON),
}


@pytest.mark.parametrize(
    ("status", "body", "content_type"), list(STREAM_ERRORS.values()), ids=list(STREAM_ERRORS)
)
async def test_stream_series_errors_are_series_errors(
    fake: StartFake, status: int, body: bytes, content_type: str
) -> None:
    observer = Observed()
    fp = await fake(web.Response(body=body, status=status, content_type=content_type))
    async with PrometheusClient(PrometheusConfig(url=fp.url()), observer=observer) as client:
        with pytest.raises(PrometheusError) as whole:
            await client.series(["up"])
        with pytest.raises(PrometheusError) as streamed:
            await client.stream_series(["up"], sink=Batches())
    old, new = whole.value, streamed.value
    assert (new.error_type, new.status, new.endpoint, new.method) == (
        old.error_type,
        old.status,
        "/api/v1/series",
        "GET",
    )
    if status == 200 and content_type == JSON and "not JSON" in old.message:
        # The streaming parser found it: only the description of the problem differs.
        assert new.message.startswith("response body is not JSON (")
        assert new.message.endswith(f"; application/json): {body.decode()!r}")
    else:
        assert new.message == old.message
    assert [c.error for c in observer.calls] == [old, new]


async def test_stream_series_truncated_or_broken_bodies(fake: StartFake) -> None:
    body = orjson.dumps({"status": "success", "data": many_series(3000)})
    answers = iter(
        [
            body[: len(body) // 2],  # complete HTTP response, truncated JSON
            body.replace(b'"app-2000"', b'"app-2000",'),  # a syntax error in the middle
            body.replace(b'"app-2000"', b"2000"),  # a label value that is not a string
        ]
    )

    async def respond(_: web.Request) -> web.Response:
        return web.Response(body=next(answers), content_type="application/json")

    fp = await fake(respond)
    messages = []
    async with client_for(fp) as client:
        for _ in range(3):
            sink = Batches()
            with pytest.raises(PrometheusError) as info:
                await client.stream_series(["up"], sink=sink)
            assert (info.value.error_type, info.value.status) == ("bad_response", 200)
            assert 0 < len(sink.series) < 3000  # what came before the problem
            messages.append(info.value.message)
    assert f"unexpected end of data after {len(body) // 2} bytes" in messages[0]
    assert messages[1].startswith("response body is not JSON (")
    assert messages[2] == "unexpected response data: series label 'pod' is not a string: 2000"


async def test_stream_series_connection_lost_mid_body(fake: StartFake) -> None:
    body = orjson.dumps({"status": "success", "data": many_series(3000)})

    async def respond(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        await response.write(body[: len(body) // 2])
        assert request.transport is not None
        request.transport.close()
        return response

    fp = await fake(respond)
    async with client_for(fp) as client:
        with pytest.raises(PrometheusError) as info:
            await client.stream_series(["up"], sink=Batches())
    assert (info.value.error_type, info.value.status) == ("connection", 200)
    assert "ClientPayloadError" in info.value.message


async def test_stream_series_timeout_covers_the_body(fake: StartFake) -> None:
    release = asyncio.Event()
    sink = Batches()

    async def respond(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        await response.write(b'{"status":"success","data":[{"a":"b"},{"c":"d"},')
        await release.wait()
        return response

    fp = await fake(respond)
    try:
        async with client_for(fp, timeout=0.3) as client:
            with pytest.raises(PrometheusError) as info:
                await client.stream_series(["up"], sink=sink)
    finally:
        release.set()
    assert (info.value.error_type, info.value.status) == ("timeout", 200)
    assert sink.series == [{"a": "b"}, {"c": "d"}]


async def test_stream_series_redacts_secrets(fake: StartFake, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("s3cr3t-token")

    async def echo(request: web.Request) -> web.Response:
        auth = request.headers["Authorization"]
        if request.query.get("match[]") == "text":
            return web.Response(status=500, text=f"denied {auth}")
        doc = {"status": "error", "errorType": "forbidden", "error": f"denied {auth}"}
        return web.Response(body=orjson.dumps(doc), content_type="application/json")

    fp = await fake(echo)
    async with client_for(fp, token_file=str(token_file)) as client:
        for match in ("text", "json"):
            with pytest.raises(PrometheusError) as info:
                await client.stream_series([match], sink=Batches())
            assert "s3cr3t-token" not in str(info.value)
            assert "denied Bearer <redacted>" in str(info.value)


async def test_stream_series_rejects_a_bare_string() -> None:
    client = PrometheusClient(PrometheusConfig(url="http://127.0.0.1:1"))
    with pytest.raises(TypeError):
        await client.stream_series("up", sink=Batches())
    await client.close()


# --- --prometheus-auth-config / --prometheus-auth-incluster -------------------------


def _auth_kubeconfig(path: Path, server: str, *, ca: Path | None = None, **user: Any) -> str:
    """A kubeconfig for Prometheus auth: only its TLS and user matter, not its server URL."""
    return str(write_kubeconfig(path, server, ca_file=str(ca) if ca else None, user=user))


async def test_auth_config_token_and_ca_on_every_path(
    fake: StartFake, pki: Pki, tmp_path: Path
) -> None:
    """The kubeconfig's CA verifies the server and its token goes on every request: the lean
    client (query), aiohttp (streamed series) and a POST."""

    async def answer(request: web.Request) -> web.Response:
        return prom_json([] if request.path.endswith("/series") else EMPTY_VECTOR)

    fp = await fake(answer, ssl_context=_server_tls(pki))
    config = _auth_kubeconfig(
        tmp_path / "kc", "https://prometheus.invalid:9091", ca=pki.ca, token="kc-token"
    )
    async with client_for(fp, auth_config=config) as client:
        await client.query("up")
        await client.stream_series(["up"], sink=lambda batch: None)
    async with client_for(fp, auth_config=config, verb="POST") as client:
        await client.query("up")
    assert [s.headers.getall("Authorization") for s in fp.seen] == [["Bearer kc-token"]] * 3


async def test_auth_config_without_its_ca_fails_verification(
    fake: StartFake, pki: Pki, tmp_path: Path
) -> None:
    fp = await fake(ssl_context=_server_tls(pki))
    config = _auth_kubeconfig(tmp_path / "kc", "https://p:1", token="kc-token")
    async with client_for(fp, auth_config=config) as client:
        with pytest.raises(PrometheusError) as info:
            await client.query("up")
    assert "certificate" in str(info.value).lower()
    assert fp.seen == []


async def test_auth_config_token_file_rotates(fake: StartFake, pki: Pki, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("first\n")
    fp = await fake(ssl_context=_server_tls(pki))
    config = _auth_kubeconfig(tmp_path / "kc", "https://p:1", ca=pki.ca, tokenFile=str(token))
    async with client_for(fp, auth_config=config) as client:
        await client.query("up")
        new = tmp_path / "token.new"
        new.write_text("second")
        os.replace(new, token)  # kubelet's projected-token swap
        await client.query("up")
    assert [s.headers["Authorization"] for s in fp.seen] == ["Bearer first", "Bearer second"]


async def test_auth_config_client_certificate_basic_auth_and_insecure(
    fake: StartFake, pki: Pki, tmp_path: Path
) -> None:
    fp = await fake(ssl_context=_server_tls(pki, require_client_cert=True))
    pair = {"client-certificate": str(pki.client_cert), "client-key": str(pki.client_key)}
    with_cert = _auth_kubeconfig(tmp_path / "cert", "https://p:1", ca=pki.ca, **pair)
    async with client_for(fp, auth_config=with_cert) as client:
        await client.query("up")
    assert "Authorization" not in fp.seen[-1].headers

    fp = await fake(ssl_context=_server_tls(pki))
    basic = tmp_path / "basic"
    write_kubeconfig(basic, "https://p:1", insecure=True, user={"username": "u", "password": "pw"})
    async with client_for(fp, auth_config=str(basic)) as client:
        await client.query("up")  # insecure-skip-tls-verify: our CA is not needed
    assert fp.seen[-1].headers["Authorization"] == "Basic dTpwdw=="


async def test_auth_config_precedence(fake: StartFake, pki: Pki, tmp_path: Path) -> None:
    """As the Go adapter's round trippers: --prometheus-header's Authorization, then the URL's
    user, then --prometheus-token-file, then the kubeconfig; --prometheus-ca-file replaces
    the kubeconfig altogether."""
    token_file = tmp_path / "flag-token"
    token_file.write_text("flag-token")
    fp = await fake()
    config = _auth_kubeconfig(tmp_path / "kc", "https://p:1", token="kc-token")
    cases: list[tuple[dict[str, Any], str | None]] = [
        ({}, "Bearer kc-token"),
        ({"token_file": str(token_file)}, "Bearer flag-token"),
        ({"headers": parse_header_flags(["Authorization=Custom x"])}, "Custom x"),
        ({"url": fp.url().replace("http://", "http://me:pw@")}, "Basic bWU6cHc="),
    ]
    for extra, expected in cases:
        async with PrometheusClient(
            PrometheusConfig(**{"url": fp.url(), "auth_config": config, **extra})
        ) as client:
            await client.query("up")
        assert fp.seen[-1].headers.getall("Authorization", []) == [expected], extra

    tls = await fake(ssl_context=_server_tls(pki))
    async with client_for(tls, auth_config=config, ca_file=str(pki.ca)) as client:
        await client.query("up")
    assert "Authorization" not in tls.seen[-1].headers


async def test_auth_config_credentials_need_an_https_cluster(
    fake: StartFake, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """clientcmd reads a user's credentials only when the kubeconfig's server is https."""
    fp = await fake()
    config = _auth_kubeconfig(tmp_path / "kc", "http://prometheus:9090", token="kc-token")
    async with client_for(fp, auth_config=config) as client:
        await client.query("up")
    assert "Authorization" not in fp.seen[-1].headers
    assert "not https" in caplog.text and "kc-token" not in caplog.text


async def test_auth_incluster_uses_the_service_account(
    fake: StartFake, pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "token").write_text("sa-token")
    monkeypatch.setattr(
        "adapter.prometheus.transport.load_in_cluster",
        functools.partial(
            load_in_cluster,
            token_path=str(tmp_path / "token"),
            ca_path=str(pki.ca),
            host_env={"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"},
        ),
    )
    fp = await fake(ssl_context=_server_tls(pki))
    async with client_for(fp, auth_incluster=True) as client:
        await client.query("up")
    assert fp.seen[-1].headers["Authorization"] == "Bearer sa-token"


async def test_auth_config_exec_plugin_refreshed_after_401(fake: StartFake, tmp_path: Path) -> None:
    counter = tmp_path / "count"
    plugin = tmp_path / "plugin.py"
    plugin.write_text(
        f"#!{sys.executable}\n"
        "import json, pathlib\n"
        f"p = pathlib.Path({str(counter)!r})\n"
        "n = int(p.read_text()) + 1 if p.exists() else 1\n"
        "p.write_text(str(n))\n"
        "print(json.dumps({'apiVersion': 'client.authentication.k8s.io/v1',"
        " 'kind': 'ExecCredential', 'status': {'token': f'exec-{n}'}}))\n"
    )
    plugin.chmod(0o755)

    async def first_refused(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") == "Bearer exec-1":
            return prom_error(401, "unauthorized", "token expired")
        return prom_json(EMPTY_VECTOR)

    fp = await fake(first_refused)
    exec_user = {"command": str(plugin), "apiVersion": "client.authentication.k8s.io/v1"}
    config = _auth_kubeconfig(tmp_path / "kc", "https://p:1", exec=exec_user)
    async with client_for(fp, auth_config=config) as client:
        with pytest.raises(PrometheusError):
            await client.query("up")
        await client.query("up")
        await client.query("up")
    assert [s.headers["Authorization"] for s in fp.seen] == [
        "Bearer exec-1",
        "Bearer exec-2",
        "Bearer exec-2",
    ]


async def test_auth_config_secrets_never_in_errors(fake: StartFake, tmp_path: Path) -> None:
    async def echo(request: web.Request) -> web.Response:
        return web.Response(status=500, text=f"denied {request.headers['Authorization']}")

    fp = await fake(echo)
    for name, user, secrets in [
        ("token", {"token": "kc-s3cret"}, ["kc-s3cret"]),
        (
            "basic",
            {"username": "alice", "password": "hunter2"},
            ["hunter2", "YWxpY2U6aHVudGVyMg=="],
        ),
    ]:
        config = write_kubeconfig(tmp_path / name, "https://p:1", user=user)
        async with client_for(fp, auth_config=str(config)) as client:
            with pytest.raises(PrometheusError) as info:
                await client.query("up")
        for secret in secrets:
            assert secret not in str(info.value)
        assert "<redacted>" in str(info.value)


@pytest.mark.parametrize(
    ("config", "needle"),
    [
        (
            PrometheusConfig(auth_config="/nonexistent/kc", auth_incluster=True),
            "may not use both in-cluster auth and an explicit kubeconfig at the same time",
        ),
        (
            PrometheusConfig(auth_config="/nonexistent/kc"),
            "unable to construct auth configuration from '/nonexistent/kc' for connecting to "
            "Prometheus: unable to read kubeconfig",
        ),
    ],
)
def test_auth_config_errors(config: PrometheusConfig, needle: str) -> None:
    with pytest.raises(PrometheusConfigError, match=re.escape(needle)):
        PrometheusClient(config)


def test_auth_incluster_outside_a_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(PrometheusConfigError, match="unable to construct in-cluster auth"):
        PrometheusClient(PrometheusConfig(auth_incluster=True))


def test_ca_file_makes_auth_flags_irrelevant(caplog: pytest.LogCaptureFixture, pki: Pki) -> None:
    """Go never reads the kubeconfig when --prometheus-ca-file is set, so even both auth
    flags together are no error then."""
    PrometheusClient(
        PrometheusConfig(ca_file=str(pki.ca), auth_config="/nonexistent", auth_incluster=True)
    )
    assert "--prometheus-ca-file takes precedence" in caplog.text


# --- large answers and the size limit ---------------------------------------------------

# Both transports: the lean HTTP/1.1 client, and aiohttp (which a header asking for
# compressed answers selects).
TRANSPORTS = [
    pytest.param((), id="lean"),
    pytest.param(parse_header_flags(["Accept-Encoding=gzip"]), id="aiohttp"),
]


def large_vector(samples: int) -> dict[str, object]:
    return {
        "resultType": "vector",
        "result": [
            {
                "metric": {"namespace": f"ns-{n % 7}", "pod": f"app-{n}", "x": '"},{"' * (n % 2)},
                "value": [1700000000.5, "NaN" if n % 1000 == 0 else str(n)],
            }
            for n in range(samples)
        ],
    }


class StreamedQueries:
    """Counts the answers QueryStreamParser read (they were too large to read whole)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.finished = 0
        original = QueryStreamParser.finish

        def finish(parser: QueryStreamParser) -> QueryResult:
            self.finished += 1
            return original(parser)

        monkeypatch.setattr(QueryStreamParser, "finish", finish)


@pytest.mark.parametrize("headers", TRANSPORTS)
async def test_a_large_answer_is_parsed_as_it_arrives_to_the_same_result(
    fake: StartFake, headers: tuple[tuple[str, str], ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = large_vector(20_000)
    body = orjson.dumps({"status": "success", "data": data, "warnings": ["w"]})
    assert len(body) > 4 * STREAM_THRESHOLD

    async def respond(request: web.Request) -> web.StreamResponse:
        return await trickle(request, body, piece=50_000)

    streamed = StreamedQueries(monkeypatch)
    fp = await fake(respond)
    async with client_for(fp, headers=headers) as client:
        result = await client.query("up")
    data_, warnings = decode_response(200, "OK", body, "application/json", "GET")
    assert repr(result) == repr(parse_query_data(data_, warnings))
    assert streamed.finished == 1 and result.warnings == ("w",)


async def test_small_answers_are_read_whole(
    fake: StartFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    streamed = StreamedQueries(monkeypatch)
    fp = await fake(prom_json(large_vector(100)))
    async with client_for(fp) as client:
        assert len((await client.query("up")).samples) == 100
    assert streamed.finished == 0


async def test_a_large_series_listing_read_whole_is_parsed_as_it_arrives(fake: StartFake) -> None:
    series = many_series(5000)
    body = orjson.dumps({"status": "success", "data": series})
    assert len(body) > STREAM_THRESHOLD

    async def respond(request: web.Request) -> web.StreamResponse:
        return await trickle(request, body, piece=20_000)

    fp = await fake(respond)
    async with client_for(fp) as client:
        assert await client.series(["up"]) == series


def over_the_limit(framing: str, body: bytes) -> Handler:
    async def respond(request: web.Request) -> web.StreamResponse:
        if framing == "chunked":
            return await trickle(request, body, piece=20_000)
        return web.Response(body=body, content_type="application/json")

    return respond


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
@pytest.mark.parametrize("headers", TRANSPORTS)
async def test_an_answer_over_the_limit_fails_naming_the_limit(
    fake: StartFake, headers: tuple[tuple[str, str], ...], framing: str
) -> None:
    body = orjson.dumps({"status": "success", "data": large_vector(5000)})
    assert len(body) > 300_000
    observer = Observed()
    fp = await fake(over_the_limit(framing, body))
    config = PrometheusConfig(url=fp.url(), headers=headers, max_response_size=200 << 10)
    async with PrometheusClient(config, observer=observer) as client:
        with pytest.raises(PrometheusError) as info:
            await client.query("up")
    error = info.value
    assert (error.error_type, error.status, error.endpoint) == ("too_large", 200, "/api/v1/query")
    assert error.message.startswith(
        "the answer is larger than --prometheus-max-response-size=200Ki (204800 bytes); "
        "stopped reading at "
    )
    assert error.message.endswith(" bytes and closed the connection")
    assert str(error).endswith(f"(HTTP 200 from GET {fp.url('/api/v1/query')})")
    assert observer.calls[0].error is error


async def test_the_limit_covers_every_answer_read_whole_but_not_streamed_series(
    fake: StartFake,
) -> None:
    series = many_series(3000)
    names = [f"metric_{n:06d}" for n in range(20_000)]

    async def respond(request: web.Request) -> web.Response:
        if request.path == "/api/v1/series":
            return prom_json(series)
        return prom_json(names)

    fp = await fake(respond)
    async with client_for(fp, max_response_size=100_000) as client:
        for call in (client.series(["up"]), client.labels(), client.metric_names()):
            with pytest.raises(PrometheusError, match="--prometheus-max-response-size=100k"):
                await call
        sink = Batches()
        assert await client.stream_series(["up"], sink=sink) == 3000
    async with client_for(fp, max_response_size=0) as client:  # 0: no limit
        assert await client.metric_names() == names


async def test_the_connection_is_closed_and_the_next_request_succeeds(fake: StartFake) -> None:
    big = orjson.dumps({"status": "success", "data": large_vector(5000)})
    answers = iter([big, orjson.dumps({"status": "success", "data": EMPTY_VECTOR})])
    peers: list[object] = []

    async def respond(request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        peers.append(request.transport.get_extra_info("peername"))
        return await trickle(request, next(answers), piece=20_000)

    fp = await fake(respond)
    async with client_for(fp, max_response_size=100_000) as client:
        with pytest.raises(PrometheusError, match="too_large"):
            await client.query("up")
        assert (await client.query("up")).samples == ()
    assert len(peers) == 2 and peers[0] != peers[1]  # a new connection for the second


def test_negative_max_response_size_is_rejected() -> None:
    with pytest.raises(PrometheusConfigError, match="maximum response size"):
        PrometheusClient(PrometheusConfig(max_response_size=-1))


@pytest.mark.parametrize(
    ("text", "size", "shown"),
    [
        ("64Mi", 64 << 20, "64Mi"),
        ("67108864", 64 << 20, "64Mi"),
        ("1.5Gi", 1536 << 20, "1536Mi"),
        ("500M", 500_000_000, "500M"),
        ("100k", 100_000, "100k"),
        (" 2Ki ", 2048, "2Ki"),
        ("0", 0, "0"),
        ("1000001", 1_000_001, "1000001"),
    ],
)
def test_sizes_are_read_as_kubernetes_quantities(text: str, size: int, shown: str) -> None:
    assert parse_size(text) == size
    assert format_size(size) == shown


@pytest.mark.parametrize("text", ["", "-1", "64MB", "1e3", "64 Mi", "Mi", "0x10"])
def test_invalid_sizes_name_the_flag(text: str) -> None:
    with pytest.raises(PrometheusConfigError, match="invalid --prometheus-max-response-size"):
        parse_size(text)


def test_the_default_limit() -> None:
    assert PrometheusConfig().max_response_size == DEFAULT_MAX_RESPONSE_SIZE == 32 << 20


async def test_full_collections_wait_while_large_answers_are_read_and_used(
    fake: StartFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = orjson.dumps({"status": "success", "data": large_vector(5000)})

    async def respond(request: web.Request) -> web.StreamResponse:
        return await trickle(request, body, piece=50_000)

    large_answers = answers._large_answers
    large_answers._settled()  # white box: whatever an earlier test's loop left
    settled = asyncio.Event()
    settle = answers._LargeAnswers._settled

    def settled_here(state: answers._LargeAnswers) -> None:
        restoring = state._thresholds is not None
        settle(state)
        if restoring:
            settled.set()

    monkeypatch.setattr(answers, "_SETTLE", 0.05)
    monkeypatch.setattr(answers._LargeAnswers, "_settled", settled_here)
    thresholds = gc.get_threshold()
    fp = await fake(respond)
    async with client_for(fp) as client:
        result = await client.query("up")
        assert gc.get_threshold() == (*thresholds[:2], answers._NO_FULL_COLLECTION)
        assert large_answers._kept == [result]  # freed once settled, on a turn of its own
    await asyncio.wait_for(settled.wait(), 5)
    assert gc.get_threshold() == thresholds and large_answers._kept == []


def test_basic_auth_is_gos_even_with_a_colon_in_the_user() -> None:
    # net/http's SetBasicAuth: base64 of the UTF-8 "user:password", a ":" in the user included
    # (aiohttp's encoder refuses it, which crashed start-up).
    assert basic_auth("a:b", "pw") == "Basic " + base64.b64encode(b"a:b:pw").decode()
    assert basic_auth("ü", "") == "Basic " + base64.b64encode("ü:".encode()).decode()
