"""The fake kube-apiserver and the test PKI, exercised over real, CA-verified HTTPS."""

from __future__ import annotations

import asyncio
import datetime
import json
import ssl
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from harness.fake_kube_apiserver import (
    AUTH_CONFIGMAP_NAME,
    FakeKubeAPIServer,
    UserInfo,
    running_fake_kube_apiserver,
)
from harness.pki import CertificateAuthority

METADATA_LIST = "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io"


@pytest.fixture
async def server() -> AsyncIterator[FakeKubeAPIServer]:
    async with running_fake_kube_apiserver(history_size=5) as fake:
        yield fake


@pytest.fixture
async def client(server: FakeKubeAPIServer) -> AsyncIterator[aiohttp.ClientSession]:
    connector = aiohttp.TCPConnector(ssl=server.ssl_context())
    headers = {"Authorization": f"Bearer {server.token}"}
    async with aiohttp.ClientSession(server.url, connector=connector, headers=headers) as session:
        yield session


async def get(
    client: aiohttp.ClientSession,
    path: str,
    params: Mapping[str, str] | None = None,
    accept: str | None = None,
) -> tuple[int, Any]:
    headers = {"Accept": accept} if accept else {}
    async with client.get(path, params=params, headers=headers) as response:
        return response.status, await response.json(content_type=None)


async def post(client: aiohttp.ClientSession, path: str, body: Any) -> tuple[int, Any]:
    async with client.post(path, json=body) as response:
        return response.status, await response.json(content_type=None)


class Watch:
    """An open watch stream, read one event at a time."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response

    async def next(self, timeout: float = 2.0) -> dict[str, Any] | None:
        line = await asyncio.wait_for(self.response.content.readline(), timeout)
        return json.loads(line) if line else None

    async def event(self, timeout: float = 2.0) -> dict[str, Any]:
        """The next event; fails if the stream ended instead."""
        event = await self.next(timeout)
        assert event is not None, "the watch stream ended"
        return event


async def open_watch(
    client: aiohttp.ClientSession, path: str, params: Mapping[str, str]
) -> aiohttp.ClientResponse:
    response = await client.get(path, params={"watch": "1", **params})
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/json"
    return response


def pod(
    name: str, namespace: str = "default", phase: str = "Running", **labels: str
) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {"nodeName": "node-1"},
        "status": {"phase": phase},
    }


def names(items: list[dict[str, Any]]) -> list[str]:
    return [item["metadata"]["name"] for item in items]


# --- transport and authentication -----------------------------------------------------------


async def test_https_is_verified_and_a_known_bearer_token_is_required(
    server: FakeKubeAPIServer, client: aiohttp.ClientSession
) -> None:
    # The system trust store does not know the fake's CA.
    async with aiohttp.ClientSession() as plain:
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await plain.get(server.url + "/api")
    connector = aiohttp.TCPConnector(ssl=server.ssl_context())
    async with aiohttp.ClientSession(server.url, connector=connector) as anonymous:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}):
            async with anonymous.get("/api/v1/pods", headers=headers) as response:
                assert response.status == 401
                assert await response.json() == {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Failure",
                    "message": "Unauthorized",
                    "reason": "Unauthorized",
                    "code": 401,
                }
    assert (await get(client, "/version"))[1]["gitVersion"] == "v1.28.4"
    assert [r.user for r in server.requests[-4:]] == [None, None, None, server.username]


# --- discovery ------------------------------------------------------------------------------


async def test_discovery_documents(
    server: FakeKubeAPIServer, client: aiohttp.ClientSession
) -> None:
    status, api = await get(client, "/api")
    assert status == 200
    assert api["kind"] == "APIVersions" and api["versions"] == ["v1"]

    status, core = await get(client, "/api/v1")
    assert core["kind"] == "APIResourceList" and core["groupVersion"] == "v1"
    by_name = {r["name"]: r for r in core["resources"]}
    assert {
        "pods",
        "services",
        "nodes",
        "namespaces",
        "configmaps",
        "persistentvolumes",
        "endpoints",
    } <= set(by_name)
    assert by_name["pods"]["singularName"] == "pod"
    assert by_name["pods"]["shortNames"] == ["po"]
    assert by_name["pods"]["namespaced"] is True and by_name["pods"]["kind"] == "Pod"
    assert {"list", "watch", "get"} <= set(by_name["pods"]["verbs"])
    assert by_name["nodes"]["namespaced"] is False
    assert by_name["pods/status"]["singularName"] == ""

    status, groups = await get(client, "/apis")
    assert groups["kind"] == "APIGroupList" and groups["apiVersion"] == "v1"
    group_names = [g["name"] for g in groups["groups"]]
    assert {"apps", "batch", "authentication.k8s.io", "authorization.k8s.io"} <= set(group_names)
    apps = groups["groups"][group_names.index("apps")]
    assert apps["preferredVersion"] == {"groupVersion": "apps/v1", "version": "v1"}

    status, apps_v1 = await get(client, "/apis/apps/v1")
    assert apps_v1["apiVersion"] == "v1" and apps_v1["groupVersion"] == "apps/v1"
    deploy = next(r for r in apps_v1["resources"] if r["name"] == "deployments")
    assert deploy["shortNames"] == ["deploy"] and deploy["kind"] == "Deployment"
    scale = next(r for r in apps_v1["resources"] if r["name"] == "deployments/scale")
    assert (scale["group"], scale["version"], scale["kind"]) == ("autoscaling", "v1", "Scale")
    assert [r["name"] for r in (await get(client, "/apis/batch/v1"))[1]["resources"]] == ["jobs"]

    # A CRD registered after start-up is discovered at once.
    assert (await get(client, "/apis/example.com/v1"))[0] == 404
    server.add_resource("example.com", "v1", "widgets", "Widget", True, short_names=["wd"])
    status, widgets = await get(client, "/apis/example.com/v1")
    assert status == 200
    assert widgets["resources"] == [
        {
            "name": "widgets",
            "singularName": "widget",
            "namespaced": True,
            "kind": "Widget",
            "verbs": [
                "create",
                "delete",
                "deletecollection",
                "get",
                "list",
                "patch",
                "update",
                "watch",
            ],
            "shortNames": ["wd"],
        }
    ]
    assert "example.com" in [g["name"] for g in (await get(client, "/apis"))[1]["groups"]]
    status, group = await get(client, "/apis/example.com")
    assert group["kind"] == "APIGroup" and group["name"] == "example.com"


# --- lists and gets -------------------------------------------------------------------------


async def test_list_with_selectors_and_metadata_only(
    server: FakeKubeAPIServer, client: aiohttp.ClientSession
) -> None:
    server.add_object("pods", pod("a", "ns1", app="web", tier="front"))
    server.add_object("v1/pods", pod("b", "ns1", phase="Pending", app="web", tier="db"))
    server.add_object("v1/pods", pod("c", "ns2", app="api"))
    server.add_object("apps/v1/deployments", {"metadata": {"name": "web", "namespace": "ns1"}})

    status, all_pods = await get(client, "/api/v1/pods")
    assert status == 200
    assert (all_pods["kind"], all_pods["apiVersion"]) == ("PodList", "v1")
    assert all_pods["metadata"]["resourceVersion"] == server.resource_version
    assert names(all_pods["items"]) == ["a", "b", "c"]
    # Typed lists carry no per-item kind/apiVersion, exactly like kube-apiserver.
    assert "kind" not in all_pods["items"][0]
    item_rvs = [int(i["metadata"]["resourceVersion"]) for i in all_pods["items"]]
    assert item_rvs == sorted(set(item_rvs))
    assert all(len(i["metadata"]["uid"]) == 36 for i in all_pods["items"])

    assert names((await get(client, "/api/v1/namespaces/ns1/pods"))[1]["items"]) == ["a", "b"]
    selected = await get(client, "/api/v1/pods", {"labelSelector": "app=web"})
    assert names(selected[1]["items"]) == ["a", "b"]
    selected = await get(client, "/api/v1/pods", {"labelSelector": "app in (web,api),tier!=db"})
    assert names(selected[1]["items"]) == ["a", "c"]
    selected = await get(client, "/api/v1/pods", {"fieldSelector": "status.phase=Running"})
    assert names(selected[1]["items"]) == ["a", "c"]
    selected = await get(
        client, "/api/v1/pods", {"fieldSelector": "metadata.namespace!=ns1,metadata.name=c"}
    )
    assert names(selected[1]["items"]) == ["c"]
    deployments = await get(client, "/apis/apps/v1/namespaces/ns1/deployments")
    assert deployments[1]["kind"] == "DeploymentList" and deployments[1]["apiVersion"] == "apps/v1"
    assert names(deployments[1]["items"]) == ["web"]

    status, bad = await get(client, "/api/v1/pods", {"labelSelector": "app in ("})
    assert status == 400 and bad["reason"] == "BadRequest" and bad["kind"] == "Status"
    assert bad["message"].startswith("unable to parse requirement")
    status, bad = await get(client, "/api/v1/services", {"fieldSelector": "status.phase=x"})
    assert status == 400 and "field label not supported" in bad["message"]

    status, meta = await get(
        client, "/api/v1/namespaces/ns1/pods", {"labelSelector": "tier=db"}, METADATA_LIST
    )
    assert status == 200
    assert (meta["kind"], meta["apiVersion"]) == ("PartialObjectMetadataList", "meta.k8s.io/v1")
    assert [set(i) for i in meta["items"]] == [{"kind", "apiVersion", "metadata"}]
    assert meta["items"][0]["kind"] == "PartialObjectMetadata"
    assert meta["items"][0]["metadata"]["labels"] == {"app": "web", "tier": "db"}
    # client-go's metadata client offers protobuf first, then the JSON variant.
    accept = f"application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,{METADATA_LIST}"
    assert (await get(client, "/api/v1/pods", accept=accept))[1][
        "kind"
    ] == "PartialObjectMetadataList"
    assert (await get(client, "/api/v1/pods", accept="application/vnd.kubernetes.protobuf"))[
        0
    ] == 406

    # CRD (unstructured) list items keep kind and apiVersion.
    server.add_resource("example.com", "v1", "widgets", "Widget", False)
    server.add_object("widgets", {"metadata": {"name": "w1"}, "spec": {"size": 3}})
    widgets = (await get(client, "/apis/example.com/v1/widgets"))[1]
    assert widgets["kind"] == "WidgetList"
    assert (
        widgets["items"][0]["kind"] == "Widget"
        and widgets["items"][0]["apiVersion"] == "example.com/v1"
    )


async def test_list_pagination(server: FakeKubeAPIServer, client: aiohttp.ClientSession) -> None:
    for name in "abcde":
        server.add_object("pods", pod(name))
    seen: list[str] = []
    params = {"limit": "2"}
    while True:
        page = (await get(client, "/api/v1/namespaces/default/pods", params))[1]
        seen += names(page["items"])
        if not page["metadata"].get("continue"):
            break
        params = {"limit": "2", "continue": page["metadata"]["continue"]}
    assert seen == list("abcde")


async def test_get_object_and_not_found_status(
    server: FakeKubeAPIServer, client: aiohttp.ClientSession
) -> None:
    created = server.add_object("pods", pod("x", "ns1"))
    status, got = await get(client, "/api/v1/namespaces/ns1/pods/x")
    assert status == 200 and got == created
    assert (got["kind"], got["apiVersion"]) == ("Pod", "v1")
    status, partial = await get(
        client,
        "/api/v1/namespaces/ns1/pods/x",
        accept="application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io",
    )
    assert partial["kind"] == "PartialObjectMetadata" and "spec" not in partial
    assert (await get(client, "/api/v1/namespaces/kube-system"))[1]["kind"] == "Namespace"

    status, missing = await get(client, "/api/v1/namespaces/ns1/pods/y")
    assert status == 404
    assert missing == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'pods "y" not found',
        "reason": "NotFound",
        "details": {"name": "y", "kind": "pods"},
        "code": 404,
    }
    status, missing = await get(client, "/apis/apps/v1/namespaces/ns1/deployments/d")
    assert missing["message"] == 'deployments.apps "d" not found'
    assert missing["details"] == {"name": "d", "group": "apps", "kind": "deployments"}
    status, unknown = await get(client, "/apis/apps/v1/namespaces/ns1/gizmos")
    assert (
        status == 404 and unknown["message"] == "the server could not find the requested resource"
    )


# --- watch ----------------------------------------------------------------------------------


async def test_watch_streams_changes_in_order(
    server: FakeKubeAPIServer, client: aiohttp.ClientSession
) -> None:
    server.add_object("pods", pod("old"))
    start = server.resource_version
    async with await open_watch(
        client, "/api/v1/namespaces/default/pods", {"resourceVersion": start}
    ) as resp:
        watch = Watch(resp)
        server.add_object("pods", pod("p", app="a"))
        server.add_object("pods", pod("elsewhere", "ns2"))
        server.update_object("pods", pod("p", phase="Succeeded", app="a"))
        deleted = server.delete_object("pods", "p", "default")
        events = [await watch.event() for _ in range(3)]
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "DELETED"]
    assert all(e["object"]["metadata"]["name"] == "p" for e in events)
    assert events[0]["object"]["kind"] == "Pod" and events[0]["object"]["apiVersion"] == "v1"
    assert events[1]["object"]["status"]["phase"] == "Succeeded"
    assert events[2]["object"] == deleted
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert rvs == sorted(rvs) and rvs[0] > int(start)


async def test_watch_without_resource_version_starts_with_current_objects(
    server: FakeKubeAPIServer, client: aiohttp.ClientSession
) -> None:
    server.add_object("pods", pod("a", app="x"))
    server.add_object("pods", pod("b", app="y"))
    async with await open_watch(client, "/api/v1/pods", {"labelSelector": "app=x"}) as resp:
        watch = Watch(resp)
        first = await watch.next()
        assert first is not None and first["type"] == "ADDED"
        assert first["object"]["metadata"]["name"] == "a"
        server.add_object("pods", pod("c", app="x"))
        nxt = await watch.next()
        assert nxt is not None and nxt["object"]["metadata"]["name"] == "c"


async def test_watch_relabel_moves_objects_out_of_and_into_a_selector(
    server: FakeKubeAPIServer, client: aiohttp.ClientSession
) -> None:
    server.add_object("pods", pod("p", app="x"))
    rv = server.resource_version
    params = {"resourceVersion": rv, "labelSelector": "app=x"}
    async with await open_watch(client, "/api/v1/pods", params) as resp:
        watch = Watch(resp)
        server.set_labels("pods", "p", {"app": "y"})
        server.set_labels("pods", "p", {"app": "y", "extra": "1"})  # unseen by this watcher
        server.set_labels("pods", "p", {"app": "x"})
        server.set_labels("pods", "p", {"app": "x", "more": "1"})
        events = [await watch.next() for _ in range(3)]
    assert [(e or {})["type"] for e in events] == ["DELETED", "ADDED", "MODIFIED"]
    gone = (events[0] or {})["object"]
    # The DELETED carries the object as the watcher last knew it, at the relabel's RV.
    assert gone["metadata"]["labels"] == {"app": "x"}
    assert int(gone["metadata"]["resourceVersion"]) == int(rv) + 1


async def test_watch_with_too_old_resource_version_gets_410_expired(
    server: FakeKubeAPIServer, client: aiohttp.ClientSession
) -> None:
    first = server.add_object("pods", pod("p"))["metadata"]["resourceVersion"]
    for i in range(6):  # history_size=5: the event after `first` falls out
        server.set_labels("pods", "p", {"n": str(i)})
    async with await open_watch(client, "/api/v1/pods", {"resourceVersion": first}) as resp:
        watch = Watch(resp)
        event = await watch.next()
        assert await watch.next() is None  # and the stream ends
    assert event == {
        "type": "ERROR",
        "object": {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": f"too old resource version: {first} ({int(first) + 1})",
            "reason": "Expired",
            "code": 410,
        },
    }
    # Still inside the window: served from history.
    recent = str(int(server.resource_version) - 2)
    async with await open_watch(client, "/api/v1/pods", {"resourceVersion": recent}) as resp:
        watch = Watch(resp)
        assert [((await watch.next()) or {})["type"] for _ in range(2)] == ["MODIFIED", "MODIFIED"]


async def test_expire_watches_timeouts_and_bookmarks(
    server: FakeKubeAPIServer, client: aiohttp.ClientSession
) -> None:
    rv = server.resource_version
    responses = [
        await open_watch(client, "/api/v1/pods", {"resourceVersion": rv}),
        await open_watch(client, "/apis/apps/v1/deployments", {"resourceVersion": rv}),
    ]
    for _ in range(100):
        if server.open_watches == 2:
            break
        await asyncio.sleep(0.01)
    assert server.expire_watches() == 2
    for resp in responses:
        async with resp:
            assert await Watch(resp).next() is None

    begun = time.monotonic()
    async with await open_watch(
        client, "/api/v1/pods", {"resourceVersion": rv, "timeoutSeconds": "1"}
    ) as resp:
        assert await Watch(resp).next(timeout=3) is None
    assert 0.9 <= time.monotonic() - begun < 2.5

    server.bookmark_interval = 0.1
    params = {"resourceVersion": rv, "allowWatchBookmarks": "true"}
    async with await open_watch(client, "/api/v1/pods", params) as resp:
        bookmark = await Watch(resp).next()
    assert bookmark == {
        "type": "BOOKMARK",
        "object": {
            "kind": "Pod",
            "apiVersion": "v1",
            "metadata": {"resourceVersion": server.resource_version, "creationTimestamp": None},
        },
    }
    for _ in range(100):  # the client hung up: the server notices and forgets the watch
        if server.open_watches == 0:
            break
        await asyncio.sleep(0.01)
    assert server.open_watches == 0


async def test_metadata_only_watch(
    server: FakeKubeAPIServer, client: aiohttp.ClientSession
) -> None:
    headers = {"Accept": "application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io"}
    params = {"watch": "true", "resourceVersion": server.resource_version}
    async with client.get("/api/v1/pods", params=params, headers=headers) as resp:
        server.add_object("pods", pod("p"))
        event = await Watch(resp).next()
    assert event is not None
    assert event["object"]["kind"] == "PartialObjectMetadata" and "spec" not in event["object"]


# --- the authentication ConfigMap -----------------------------------------------------------


async def test_authentication_configmap(
    server: FakeKubeAPIServer, client: aiohttp.ClientSession
) -> None:
    front_proxy = CertificateAuthority("front-proxy-ca")
    client_ca = CertificateAuthority("client-ca")
    server.set_authentication_configmap(
        client_ca=client_ca.cert_pem,
        requestheader_ca=front_proxy.cert_pem,
        allowed_names=["front-proxy-client"],
    )
    path = f"/api/v1/namespaces/kube-system/configmaps/{AUTH_CONFIGMAP_NAME}"
    status, cm = await get(client, path)
    assert status == 200
    data = cm["data"]
    assert data["client-ca-file"] == client_ca.cert_pem.decode()
    assert data["requestheader-client-ca-file"] == front_proxy.cert_pem.decode()
    assert data["requestheader-username-headers"] == '["X-Remote-User"]'
    assert json.loads(data["requestheader-group-headers"]) == ["X-Remote-Group"]
    assert json.loads(data["requestheader-extra-headers-prefix"]) == ["X-Remote-Extra-"]
    assert json.loads(data["requestheader-allowed-names"]) == ["front-proxy-client"]
    by_field = await get(
        client,
        "/api/v1/namespaces/kube-system/configmaps",
        {"fieldSelector": f"metadata.name={AUTH_CONFIGMAP_NAME}"},
    )
    assert names(by_field[1]["items"]) == [AUTH_CONFIGMAP_NAME]

    server.auth_configmap_error = 403
    status, forbidden = await get(client, path)
    assert status == 403 and forbidden["reason"] == "Forbidden"
    assert forbidden["message"] == (
        f'configmaps "{AUTH_CONFIGMAP_NAME}" is forbidden: User "{server.username}" cannot get '
        'resource "configmaps" in API group "" in the namespace "kube-system"'
    )
    assert (await get(client, "/api/v1/namespaces/kube-system/configmaps"))[0] == 403
    assert (await get(client, "/api/v1/namespaces/default/configmaps"))[0] == 200

    server.auth_configmap_error = 404
    status, missing = await get(client, path)
    assert status == 404 and missing["message"] == f'configmaps "{AUTH_CONFIGMAP_NAME}" not found'
    assert (await get(client, "/api/v1/namespaces/kube-system/configmaps"))[1]["items"] == []


# --- reviews --------------------------------------------------------------------------------


async def test_token_review(server: FakeKubeAPIServer, client: aiohttp.ClientSession) -> None:
    server.tokens["good"] = UserInfo(
        "alice", "uid-1", ["devs", "system:authenticated"], {"scopes": ["a"]}
    )
    path = "/apis/authentication.k8s.io/v1/tokenreviews"
    review = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenReview",
        "spec": {"token": "good"},
    }
    status, answer = await post(client, path, review)
    assert status == 201
    assert (answer["kind"], answer["apiVersion"]) == ("TokenReview", "authentication.k8s.io/v1")
    assert answer["spec"] == {"token": "good"}
    assert answer["status"] == {
        "authenticated": True,
        "user": {
            "username": "alice",
            "uid": "uid-1",
            "groups": ["devs", "system:authenticated"],
            "extra": {"scopes": ["a"]},
        },
    }
    status, answer = await post(client, path, {**review, "spec": {"token": "bad"}})
    # `authenticated` is omitempty: a failed review leaves it out, as kube-apiserver does.
    assert answer["status"] == {"user": {}, "error": "invalid bearer token"}
    assert server.requests[-1].body == {**review, "spec": {"token": "bad"}}


async def test_subject_access_review(
    server: FakeKubeAPIServer, client: aiohttp.ClientSession
) -> None:
    path = "/apis/authorization.k8s.io/v1/subjectaccessreviews"

    async def review(spec: dict[str, Any]) -> dict[str, Any]:
        body = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": spec,
        }
        status, answer = await post(client, path, body)
        assert status == 201 and answer["kind"] == "SubjectAccessReview" and answer["spec"] == spec
        result: dict[str, Any] = answer["status"]
        return result

    hpa = {
        "user": "system:serviceaccount:kube-system:horizontal-pod-autoscaler",
        "groups": ["system:serviceaccounts"],
    }
    pods_metric = {
        "namespace": "default",
        "verb": "get",
        "group": "custom.metrics.k8s.io",
        "version": "v1beta2",
        "resource": "pods",
        "subresource": "http_requests",
        "name": "*",
    }
    assert await review({**hpa, "resourceAttributes": pods_metric}) == {"allowed": False}
    server.allow(
        group="system:serviceaccounts", verb=["get", "list"], group_name="custom.metrics.k8s.io"
    )
    allowed = await review({**hpa, "resourceAttributes": pods_metric})
    assert allowed["allowed"] is True and allowed["reason"].startswith(
        "RBAC: allowed by ClusterRoleBinding"
    )
    assert (await review({**hpa, "resourceAttributes": {**pods_metric, "verb": "watch"}}))[
        "allowed"
    ] is False
    other = {"user": "bob", "resourceAttributes": pods_metric}
    assert (await review(other))["allowed"] is False

    non_resource = {"user": "bob", "nonResourceAttributes": {"path": "/metrics", "verb": "get"}}
    assert (await review(non_resource))["allowed"] is False
    server.allow(user="bob", non_resource_path="/met*", verb="get", reason="metrics reader")
    assert await review(non_resource) == {"allowed": True, "reason": "metrics reader"}
    # A non-resource rule does not cover resource requests.
    assert (await review(other))["allowed"] is False

    server.deny_explicitly = True
    server.sar_deny_reason = "no RBAC policy matched"
    assert await review(other) == {
        "allowed": False,
        "denied": True,
        "reason": "no RBAC policy matched",
    }
    status, invalid = await post(client, path, {"spec": {"user": "bob"}})
    assert status == 422 and invalid["reason"] == "Invalid"


# --- failure switches, restarts, the request log ---------------------------------------------


async def test_failure_switches(server: FakeKubeAPIServer, client: aiohttp.ClientSession) -> None:
    path = "/apis/authentication.k8s.io/v1/tokenreviews"
    body = {"spec": {"token": "t"}}
    server.fail(path, 500, times=1)
    status, failed = await post(client, path, body)
    assert status == 500 and failed["reason"] == "InternalError"
    assert (await post(client, path, body))[0] == 201

    server.fail("/apis/authorization.k8s.io", None)
    with pytest.raises((aiohttp.ClientOSError, aiohttp.ServerDisconnectedError)):
        await post(client, "/apis/authorization.k8s.io/v1/subjectaccessreviews", {"spec": {}})
    server.fail("/apis/authentication.k8s.io", 503)
    assert (await post(client, path, body))[1]["reason"] == "ServiceUnavailable"
    server.heal()
    assert (await post(client, path, body))[0] == 201

    server.delay(path, 0.3)
    begun = time.monotonic()
    with pytest.raises(TimeoutError):
        async with client.post(path, json=body, timeout=aiohttp.ClientTimeout(total=0.1)):
            pass
    begun = time.monotonic()
    assert (await post(client, path, body))[0] == 201
    assert time.monotonic() - begun >= 0.3
    server.heal(path)
    begun = time.monotonic()
    assert (await post(client, path, body))[0] == 201
    assert time.monotonic() - begun < 0.3


async def test_stop_and_start_on_the_same_port_keeps_state(server: FakeKubeAPIServer) -> None:
    server.add_object("pods", pod("kept"))
    port = server.port
    await server.stop()
    connector = aiohttp.TCPConnector(ssl=server.ssl_context(), force_close=True)
    headers = {"Authorization": f"Bearer {server.token}"}
    async with aiohttp.ClientSession(server.url, connector=connector, headers=headers) as session:
        with pytest.raises(aiohttp.ClientConnectorError):
            await session.get("/api")
        await server.start()
        assert server.port == port
        assert names((await get(session, "/api/v1/pods"))[1]["items"]) == ["kept"]


async def test_request_log(server: FakeKubeAPIServer, client: aiohttp.ClientSession) -> None:
    server.clear_log()
    await get(client, "/api/v1/pods", {"labelSelector": "a=b"}, METADATA_LIST)
    await get(client, "/api/v1/namespaces/default/pods")
    await post(client, "/apis/authentication.k8s.io/v1/tokenreviews", {"spec": {"token": "x"}})
    assert server.count("GET", "/api/v1") == 2
    assert server.count("get", "/api/v1/namespaces/") == 1
    assert server.count("POST") == 1 and server.count() == 3
    first = server.requests[0]
    assert (first.method, first.path, first.query) == (
        "GET",
        "/api/v1/pods",
        {"labelSelector": "a=b"},
    )
    assert (first.user, first.body, first.accept) == (server.username, None, METADATA_LIST)
    assert server.requests[2].body == {"spec": {"token": "x"}}
    server.clear_log()
    assert server.count() == 0


async def test_kubeconfig(server: FakeKubeAPIServer, tmp_path: Path) -> None:
    config = json.loads(server.kubeconfig(tmp_path / "kubeconfig").read_text())
    cluster = config["clusters"][0]["cluster"]
    assert cluster["server"] == server.url
    assert config["users"][0]["user"]["token"] == server.token
    assert config["current-context"] == "fake"
    context = ssl.create_default_context(cadata=server.ca.cert_pem.decode())
    async with aiohttp.ClientSession() as session:
        headers = {"Authorization": f"Bearer {server.token}"}
        async with session.get(
            cluster["server"] + "/api", ssl=context, headers=headers
        ) as response:
            assert response.status == 200
    assert server.ca_file.read_bytes() == server.ca.cert_pem


# --- the PKI --------------------------------------------------------------------------------


def _eku(cert: x509.Certificate) -> set[x509.ObjectIdentifier]:
    try:
        return set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        return set()


def test_pki_certificates(tmp_path: Path) -> None:
    ca = CertificateAuthority("front-proxy-ca")
    client = ca.issue_client("front-proxy-client", ["system:masters", "ops"]).certificate
    assert (
        client.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "front-proxy-client"
    )
    assert [a.value for a in client.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == [
        "system:masters",
        "ops",
    ]
    assert _eku(client) == {ExtendedKeyUsageOID.CLIENT_AUTH}
    with pytest.raises(x509.ExtensionNotFound):
        client.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    client.verify_directly_issued_by(ca.certificate)

    assert _eku(ca.issue_client("x", client_auth=False).certificate) == {
        ExtendedKeyUsageOID.SERVER_AUTH
    }
    assert _eku(ca.issue_client("x", client_auth=False, server_auth=False).certificate) == set()
    now = datetime.datetime.now(datetime.UTC)
    assert ca.issue_expired_client("x").certificate.not_valid_after_utc < now
    future = ca.issue_client("x", not_before=now + datetime.timedelta(hours=1)).certificate
    assert future.not_valid_before_utc > now

    server = ca.issue_server(["svc.ns.svc", "127.0.0.1"])
    sans = server.certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["svc.ns.svc"]
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert _eku(server.certificate) == {ExtendedKeyUsageOID.SERVER_AUTH}

    cert_path, key_path = server.write(tmp_path / "certs", "serving")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    assert (key_path.stat().st_mode & 0o777) == 0o600

    intermediate = ca.issue_intermediate("intermediate")
    leaf = intermediate.issue_client("user").certificate
    leaf.verify_directly_issued_by(intermediate.certificate)
    intermediate.certificate.verify_directly_issued_by(ca.certificate)
    assert ca.write(tmp_path).read_bytes() == ca.cert_pem
