"""The bytes of each answer, as k8s.io/apiserver writes them for the Go adapter: framing,
pretty printing, media types and their 406s, the path index and unknown paths."""

import json
import platform
import re
from typing import Any

import pytest

from adapter import __version__
from adapter.providers.resource import ContainerMetrics, PodMetrics
from adapter.server.negotiation import Conversion
from adapter.server.resource_table import convert_resource_metrics
from tests.unit.test_server_app import (
    CUSTOM,
    EXTERNAL,
    Client,
    FakePrometheus,
    pod_sample,
)

KUBECTL = {"User-Agent": "kubectl/v1.30.0 (linux/amd64) kubernetes/7c48c2b"}
NAMED = f"{CUSTOM}/v1beta2/namespaces/demo/pods/web-0/http_requests"


async def answer(
    client: Client, path: str, headers: dict[str, str] | None = None, **params: str
) -> tuple[int, str, bytes]:
    response = await client.get(path, headers={**KUBECTL, **(headers or {})}, params=params)
    return response.status, response.headers["Content-Type"], await response.read()


async def test_json_ends_with_one_newline(client: Client, fake: FakePrometheus) -> None:
    fake.samples = [pod_sample("web-0", 1)]
    status, content_type, body = await answer(client, NAMED)
    assert (status, content_type) == (200, "application/json")
    assert body.endswith(b"}\n") and not body.endswith(b"\n\n")
    assert b"\n" not in body[:-1]
    status, _, body = await answer(client, f"{CUSTOM}/v1beta2/namespaces/demo/pods/web-0/nope")
    assert status == 404 and body == (
        b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
        b'"message":"the server could not find the metric nope for pods","reason":"NotFound",'
        b'"code":404}\n'
    )


@pytest.mark.parametrize(
    ("headers", "params", "pretty"),
    [
        ({"User-Agent": "curl/8.5.0"}, {}, True),
        ({"User-Agent": "Wget/1.21"}, {}, True),
        ({"User-Agent": "Mozilla/5.0 (X11)"}, {}, True),
        ({}, {"pretty": "true"}, True),
        ({}, {"pretty": "1"}, True),
        ({"User-Agent": "curl/8.5.0"}, {"pretty": "false"}, False),
        ({"User-Agent": "curl/8.5.0"}, {"pretty": "yes"}, False),  # not a Go bool
        ({"Accept": "application/json;pretty=1"}, {}, True),
        ({}, {}, False),
    ],
)
async def test_humans_get_indented_json_without_newline(
    client: Client,
    fake: FakePrometheus,
    headers: dict[str, str],
    params: dict[str, str],
    pretty: bool,
) -> None:
    fake.samples = [pod_sample("web-0", 1)]
    _, _, body = await answer(client, NAMED, headers, **params)
    assert body.startswith(b'{\n  "kind": "MetricValueList",\n') is pretty
    assert body.endswith(b"\n}" if pretty else b"}\n")


async def test_html_characters_are_escaped_as_go_does(client: Client) -> None:
    _, _, body = await answer(client, NAMED, metricLabelSelector="a<b>&c")
    assert b"\\u003c" in body and b"<" not in body and b"&" not in body


async def test_yaml(client: Client, fake: FakePrometheus) -> None:
    fake.samples = [pod_sample("web-0", 1)]
    status, content_type, body = await answer(client, NAMED, {"Accept": "application/yaml"})
    assert (status, content_type) == (200, "application/yaml")
    assert body.startswith(b"apiVersion: custom.metrics.k8s.io/v1beta2\nitems:\n- describedObject:")
    status, content_type, body = await answer(
        client, f"{CUSTOM}/v1beta2/namespaces/demo/pods/web-0/nope", {"Accept": "application/yaml"}
    )
    assert (status, content_type) == (404, "application/yaml")
    assert body.startswith(b"apiVersion: v1\ncode: 404\nkind: Status\n")


async def test_protobuf_is_answered_in_json(client: Client, fake: FakePrometheus) -> None:
    fake.samples = [pod_sample("web-0", 1)]
    for accept in (
        "application/vnd.kubernetes.protobuf, */*",
        "application/vnd.kubernetes.protobuf",
    ):
        status, content_type, _ = await answer(client, NAMED, {"Accept": accept})
        assert (status, content_type) == (200, "application/json")


async def test_unacceptable_media_type(client: Client) -> None:
    # go-restful refuses it before the handler; the Status cannot be negotiated either, so it
    # is written raw: indented, no newline. details {} come from NewGenericServerResponse.
    status, content_type, body = await answer(client, NAMED, {"Accept": "text/html"})
    assert (status, content_type) == (406, "application/json")
    assert body == (
        b'{\n  "kind": "Status",\n  "apiVersion": "v1",\n  "metadata": {},\n'
        b'  "status": "Failure",\n  "message": "406: Not Acceptable\\n\\nAvailable '
        b"representations: application/json, application/yaml, "
        b"application/vnd.kubernetes.protobuf, application/json;stream=watch, "
        b'application/vnd.kubernetes.protobuf;stream=watch",\n  "reason": "NotAcceptable",\n'
        b'  "details": {},\n  "code": 406\n}'
    )


async def test_table_on_custom_metrics(client: Client, fake: FakePrometheus) -> None:
    fake.samples = [pod_sample("web-0", 1)]
    table = "application/json;as=Table;v=v1;g=meta.k8s.io"
    status, _, body = await answer(client, NAMED, {"Accept": table})
    assert status == 406 and body == (
        b'{\n  "kind": "Status",\n  "apiVersion": "v1",\n  "metadata": {},\n'
        b'  "status": "Failure",\n  "message": "only the following media types are accepted: '
        b'application/json, application/yaml, application/vnd.kubernetes.protobuf",\n'
        b'  "reason": "NotAcceptable",\n  "code": 406\n}'
    )
    # kubectl offers JSON after its Tables: that is what it gets.
    status, _, body = await answer(client, NAMED, {"Accept": f"{table},application/json"})
    assert status == 200 and json.loads(body)["kind"] == "MetricValueList"
    # The external API negotiates before it queries.
    status, _, _ = await answer(client, f"{EXTERNAL}/namespaces/default/nope", {"Accept": table})
    assert status == 406


async def test_method_not_allowed_has_empty_details(client: Client) -> None:
    response = await client.post(NAMED, headers=KUBECTL)
    assert response.status == 405
    assert await response.read() == (
        b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
        b'"message":"the server does not allow this method on the requested resource",'
        b'"reason":"MethodNotAllowed","details":{},"code":405}\n'
    )


@pytest.mark.parametrize(
    "path",
    [
        f"{CUSTOM}/v1beta2/namespaces/demo/http_requests",
        f"{CUSTOM}/v1beta1/namespaces/*/http_requests",
        f"{CUSTOM}/v1beta2/namespaces/demo/metrics",
        f"{CUSTOM}/v1beta2/watch/pods/x",
    ],
)
async def test_wrong_shape_custom_paths_are_bad_requests(client: Client, path: str) -> None:
    status, _, body = await answer(client, path)
    assert status == 400 and body == (
        b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
        b'"message":"invalid request path","reason":"BadRequest","code":400}\n'
    )


async def test_index_and_unknown_paths(client: Client) -> None:
    status, content_type, body = await answer(client, "/")
    assert (status, content_type) == (200, "application/json")
    assert body.startswith(b'{\n  "paths": [\n    "/apis",\n') and body.endswith(b"\n  ]\n}")
    paths = json.loads(body)["paths"]
    assert paths == sorted(paths)
    for served in (
        "/apis/custom.metrics.k8s.io",
        "/apis/custom.metrics.k8s.io/v1beta1",
        "/apis/custom.metrics.k8s.io/v1beta2",
        "/apis/external.metrics.k8s.io/v1beta1",
        "/healthz",
        "/healthz/ping",
        "/livez",
        "/readyz",
        "/metrics",
        "/openapi/v2",
        "/version",
    ):
        assert served in paths
    assert not any("{" in p for p in paths) and "/" not in paths
    for unknown in (
        "/nonexistent",
        "/apis/foo.example.com/v1",
        "/healthzz",
        "/apis/metrics.k8s.io",
    ):
        assert await answer(client, unknown) == (404, "application/json", body)


async def test_unknown_paths_under_a_served_group_are_status(client: Client) -> None:
    for path in (f"{CUSTOM}/v1", f"{CUSTOM}/v1beta2/blah", "/version/x"):
        status, _, body = await answer(client, path)
        assert status == 404 and json.loads(body)["details"] == {}


async def test_apis_with_slash_is_apis(client: Client) -> None:
    assert await answer(client, "/apis/") == await answer(client, "/apis")


async def test_version_is_written_raw(client: Client) -> None:
    status, _, body = await answer(client, "/version")
    assert status == 200 and body.startswith(b'{\n  "major": "1",\n') and body.endswith(b"}")
    # version.Info, saying what answers: this adapter's version, Python's, the platform.
    info = json.loads(body)
    assert list(info) == [
        "major", "minor", "gitVersion", "gitCommit", "gitTreeState", "buildDate", "goVersion",
        "compiler", "platform",
    ]  # fmt: skip
    assert info["gitVersion"] == f"v{__version__}"
    assert info["goVersion"] == f"python{platform.python_version()}"
    assert re.fullmatch(r"[a-z]+/[a-z0-9_]+", info["platform"]), info["platform"]
    status, _, _ = await answer(client, "/version", {"Accept": "application/yaml"})
    assert status == 406


def test_pod_cells_sum_the_containers() -> None:
    pod = PodMetrics(
        "ns",
        "p",
        {},
        0.0,
        30.0,
        [ContainerMetrics("a", "250m", "4200500m"), ContainerMetrics("b", "1100", "1Mi")],
    )
    table: dict[str, Any] = convert_resource_metrics(
        [pod],
        Conversion("Table", "meta.k8s.io", "v1"),
        lambda item: {"metadata": {"name": item.name}},
        {},
        pods=True,
        single=False,
    )
    assert table["rows"][0]["cells"] == ["p", "1100250m", "1052776500m", "30s"]
