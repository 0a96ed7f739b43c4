"""kube-apiserver's aggregation layer in miniature, for tests that need a whole cluster API:
`kubectl top node` reads node metrics from metrics.k8s.io *and* the nodes themselves from the
core API on the same server.

Requests for the adapter's API groups go to the adapter; everything else goes to the fake
kube-apiserver; `/apis` merges both group lists (as plain legacy discovery, which clients
accept when they asked for aggregated discovery).

Before proxying a request to the adapter, the caller is authenticated as the fake
authenticates it (its bearer token in `client_tokens`; none: `system:anonymous`) and
authorized as kube-apiserver authorizes it: a SubjectAccessReview (the request's attributes,
as k8s.io/apiserver's RequestInfo derives them) decided by the fake's access table, and
kube-apiserver's 403 Status when it is not allowed. By default the aggregator grants what its
kubeconfig's user needs (get, list and watch on the adapter's groups) and discovery of
`/apis/*` to every authenticated user (the bootstrap `system:discovery` role): `grants`, which
`stop` removes. `grant=False` leaves the table to the test.
"""

import contextlib
import json
import ssl
import tempfile
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from harness.fake_kube_apiserver import AccessRule, FakeKubeAPIServer, UserInfo, status_object
from harness.pki import CertificateAuthority

__all__ = ["Aggregator", "forbidden", "request_attributes", "running_aggregator"]

_HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
    "transfer-encoding", "upgrade", "host", "content-length",
}  # fmt: skip
# k8s.io/apiserver's RequestInfo: the verb of a request with a name, by HTTP method.
_VERBS = {"GET": "get", "HEAD": "get", "POST": "create", "PUT": "update", "PATCH": "patch",
          "DELETE": "delete"}  # fmt: skip
_ANONYMOUS = UserInfo("system:anonymous", groups=("system:unauthenticated",))


def request_attributes(method: str, path: str, query: Mapping[str, str]) -> dict[str, Any]:
    """The SubjectAccessReview attributes of a request, as k8s.io/apiserver's RequestInfo
    derives them: `{"resourceAttributes": ...}` for `/apis/<g>/<v>/...` with a resource,
    `{"nonResourceAttributes": ...}` for anything else (`/apis/<g>/<v>` itself included)."""
    parts = [p for p in path.strip("/").split("/") if p]
    verb = _VERBS.get(method.upper(), method.lower())
    if len(parts) < 4 or parts[0] != "apis":
        return {"nonResourceAttributes": {"path": path, "verb": method.lower()}}
    group, version, rest = parts[1], parts[2], parts[3:]
    namespace = ""
    if rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in ("status", "finalize"):
            rest = rest[2:]
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    if not name and verb == "get":
        verb = "watch" if query.get("watch", "").lower() in ("1", "true") else "list"
    attributes = {
        "namespace": namespace,
        "verb": verb,
        "group": group,
        "version": version,
        "resource": resource,
        "subresource": subresource,
        "name": name,
    }
    # Go's omitempty.
    return {"resourceAttributes": {k: v for k, v in attributes.items() if v}}


def forbidden(user: str, attributes: Mapping[str, Any], reason: str = "") -> dict[str, Any]:
    """kube-apiserver's 403 Status (responsewriters.Forbidden, apierrors.NewForbidden)."""
    resource = attributes.get("resourceAttributes")
    if resource is None:
        target = attributes["nonResourceAttributes"]
        message = f'forbidden: User "{user}" cannot {target["verb"]} path "{target["path"]}"'
        return status_object(403, message + (f": {reason}" if reason else ""), details={})
    what = resource["resource"]
    if resource.get("subresource"):
        what += "/" + resource["subresource"]
    where = (
        f'in the namespace "{resource["namespace"]}"'
        if resource.get("namespace")
        else "at the cluster scope"
    )
    denial = (
        f'User "{user}" cannot {resource["verb"]} resource "{what}" in API group '
        f'"{resource.get("group", "")}" {where}'
    ) + (f": {reason}" if reason else "")
    qualified = resource["resource"] + (f".{resource['group']}" if resource.get("group") else "")
    name = resource.get("name", "")
    subject = f'{qualified} "{name}"' if name else qualified
    details = {"name": name, "group": resource.get("group", ""), "kind": resource["resource"]}
    return status_object(
        403,
        f"{subject} is forbidden: {denial}",
        details={k: v for k, v in details.items() if v},
    )


class Aggregator:
    def __init__(
        self,
        kube: FakeKubeAPIServer,
        adapter_url: str,
        adapter_ssl: ssl.SSLContext,
        groups: Sequence[str],
        *,
        grant: bool = True,
    ) -> None:
        self._kube = kube
        self._adapter_url = adapter_url
        self._adapter_ssl = adapter_ssl
        self._groups = tuple(groups)
        self._grant = grant
        self.grants: tuple[AccessRule, ...] = ()
        self._dir = tempfile.TemporaryDirectory(prefix="aggregator-")
        self.ca = CertificateAuthority("aggregator-ca")
        self._cert, self._key = self.ca.issue_server().write(self._dir.name, "aggregator")
        self.ca_file = self.ca.write(self._dir.name, "ca")
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def kubeconfig(self, path: Path, *, token: str | None = None) -> Path:
        """A kubeconfig for this endpoint with the fake kube-apiserver's token (or `token`,
        one of the fake's `client_tokens`)."""
        path.write_text(
            "apiVersion: v1\nkind: Config\n"
            f"clusters: [{{name: c, cluster: {{server: '{self.url}', "
            f"certificate-authority: '{self.ca_file}'}}}}]\n"
            f"users: [{{name: u, user: {{token: '{token or self._kube.token}'}}}}]\n"
            "contexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\n"
        )
        return path

    def _target(self, path: str) -> tuple[str, ssl.SSLContext]:
        if any(path.startswith(f"/apis/{group}") for group in self._groups):
            return self._adapter_url, self._adapter_ssl
        return self._kube.url, self._kube.ssl_context()

    async def _fetch(
        self,
        request: web.Request,
        base: str,
        context: ssl.SSLContext,
        *,
        accept: str | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        if accept is not None:
            headers["Accept"] = accept
        body = await request.read()
        url = base + request.path_qs
        async with self._session.request(
            request.method, url, headers=headers, data=body, ssl=context
        ) as response:
            answer = await response.read()
            kept = {k: v for k, v in response.headers.items() if k.lower() not in _HOP_BY_HOP}
            return response.status, kept, answer

    async def _apis(self, request: web.Request) -> web.Response:
        merged: list[Any] = []
        backends = (
            (self._kube.url, self._kube.ssl_context()),
            (self._adapter_url, self._adapter_ssl),
        )
        for base, context in backends:
            status, _, body = await self._fetch(request, base, context, accept="application/json")
            if status == 200:
                names = {g["name"] for g in merged}
                merged += [g for g in json.loads(body).get("groups", []) if g["name"] not in names]
        return web.json_response({"kind": "APIGroupList", "apiVersion": "v1", "groups": merged})

    def _unavailable(self, path: str) -> bool:
        """Whether the path's APIService exists in the fake kube-apiserver and is not
        Available: kube-aggregator then answers a plain-text 503 without asking the backend."""
        parts = path.strip("/").split("/")
        if len(parts) < 3 or parts[0] != "apis" or parts[1] not in self._groups:
            return False
        service = self._kube.get_object(
            "apiregistration.k8s.io/v1/apiservices", f"{parts[2]}.{parts[1]}"
        )
        if service is None:
            return False
        conditions = (service.get("status") or {}).get("conditions") or []
        return not any(
            c.get("type") == "Available" and c.get("status") == "True" for c in conditions
        )

    def _authenticate(self, request: web.Request) -> UserInfo | None:
        """The fake's authentication: a bearer token of `client_tokens`; no credentials are
        anonymous; None for a token it does not know."""
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return _ANONYMOUS
        return self._kube.client_tokens.get(token.strip())

    async def _authorize(self, request: web.Request) -> web.Response | None:
        """None when the caller may make the request; else kube-apiserver's answer."""
        user = self._authenticate(request)
        if user is None:
            return web.json_response(status_object(401, "Unauthorized"), status=401)
        attributes = request_attributes(request.method, request.path, request.query)
        spec: dict[str, Any] = {**attributes, **user.to_json()}
        spec["user"] = spec.pop("username")
        assert self._session is not None
        review = {
            "kind": "SubjectAccessReview",
            "apiVersion": "authorization.k8s.io/v1",
            "spec": spec,
        }
        try:
            async with self._session.post(
                self._kube.url + "/apis/authorization.k8s.io/v1/subjectaccessreviews",
                json=review,
                headers={"Authorization": f"Bearer {self._kube.token}"},
                ssl=self._kube.ssl_context(),
            ) as response:
                body = await response.json(content_type=None)
                if response.status != 201 or not isinstance(body, dict):
                    raise ValueError(f"{response.status}: {body}")
        except (aiohttp.ClientError, ValueError) as exc:
            # kube-apiserver when its authorizer fails: 500, plain text.
            message = f'Internal Server Error: "{request.path_qs}": {exc}'
            return web.Response(status=500, text=message + "\n")
        status = body.get("status") or {}
        if status.get("allowed") and not status.get("denied"):
            return None
        answer = forbidden(user.username, attributes, str(status.get("reason") or ""))
        return web.json_response(answer, status=403, headers={"X-Content-Type-Options": "nosniff"})

    async def _proxy(self, request: web.Request) -> web.StreamResponse:
        if request.path == "/apis":
            return await self._apis(request)
        base, context = self._target(request.path)
        if base == self._adapter_url:
            refused = await self._authorize(request)
            if refused is not None:
                return refused
        if self._unavailable(request.path):
            return web.Response(status=503, text="service unavailable\n")
        status, headers, body = await self._fetch(request, base, context)
        return web.Response(status=status, headers=headers, body=body)

    def _add_grants(self) -> None:
        user = self._kube.client_tokens[self._kube.token].username
        self.grants = (
            self._kube.allow(group="system:authenticated", verb="get", non_resource_path="/apis/*"),
            self._kube.allow(user=user, verb=("get", "list", "watch"), group_name=self._groups),
        )

    async def start(self) -> None:
        if self._grant and not self.grants:
            self._add_grants()
        self._session = aiohttp.ClientSession()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._proxy)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self._cert, self._key)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        granted = {id(rule) for rule in self.grants}
        self._kube.rules[:] = [rule for rule in self._kube.rules if id(rule) not in granted]
        self.grants = ()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None
        self._dir.cleanup()


@contextlib.asynccontextmanager
async def running_aggregator(
    kube: FakeKubeAPIServer,
    adapter_url: str,
    adapter_ssl: ssl.SSLContext,
    groups: Sequence[str],
    *,
    grant: bool = True,
) -> AsyncIterator[Aggregator]:
    aggregator = Aggregator(kube, adapter_url, adapter_ssl, groups, grant=grant)
    try:
        await aggregator.start()
        yield aggregator
    finally:
        await aggregator.stop()
