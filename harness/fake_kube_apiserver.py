"""A fake kube-apiserver over real HTTPS, speaking real Kubernetes JSON, for tests.

No kube-apiserver can run on the test machines, so this stands in for one: discovery, list,
get and watch of in-memory objects (with label and field selectors and the metadata-only
`PartialObjectMetadataList` negotiation), the `extension-apiserver-authentication` ConfigMap,
TokenReview and SubjectAccessReview decided by tables, and switches that make endpoints fail
or stall. Tests mutate the state directly (`add_object`, `set_labels`, `allow`, ...) and read
the request log to see what a client asked for.

Shapes follow kube-apiserver v1.28 (see docs in /work/shared/reference): Status errors, list
kinds, watch events (including the 410 `Expired` ERROR event once a resourceVersion has left the
bounded event history, and DELETED/ADDED when a relabel moves an object out of or into a
watcher's selector), and `omitempty` fields left out as Go leaves them out.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import datetime
import shutil
import socket
import ssl
import struct
import tempfile
import uuid
import weakref
from collections import deque
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson
from aiohttp import web

from adapter.apimachinery.labels import (
    Selector,
    SelectorError,
    label_selector_as_selector,
    parse_selector,
)
from harness.pki import CertificateAuthority

__all__ = [
    "AUTH_CONFIGMAP_NAME",
    "AUTH_CONFIGMAP_NAMESPACE",
    "APIResource",
    "AccessRule",
    "FakeKubeAPIServer",
    "RequestRecord",
    "UserInfo",
    "running_fake_kube_apiserver",
    "status_object",
]

AUTH_CONFIGMAP_NAMESPACE = "kube-system"
AUTH_CONFIGMAP_NAME = "extension-apiserver-authentication"
_META_GROUP = "meta.k8s.io"
_ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
_NAMESPACE_VERBS = ("create", "delete", "get", "list", "patch", "update", "watch")
_DEFAULT_USER = "system:serviceaccount:custom-metrics:custom-metrics-apiserver"
_GIT_VERSION = "v1.28.4"
# The reasons apimachinery gives the codes a test is likely to inject.
_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


def status_object(
    code: int, message: str, reason: str | None = None, details: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """A `metav1.Status` failure, fields in the order kube-apiserver writes them."""
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": _REASONS.get(code, "") if reason is None else reason,
    }
    if details is not None:
        body["details"] = dict(details)
    body["code"] = code
    return body


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def _status(
    code: int, message: str, reason: str | None = None, details: Mapping[str, Any] | None = None
) -> web.Response:
    return _json(status_object(code, message, reason, details), code)


def _not_found_path() -> web.Response:
    return _status(404, "the server could not find the requested resource", details={})


def _now_rfc3339() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class UserInfo:
    """An authenticated user, as TokenReview's `status.user` carries it."""

    username: str
    uid: str = ""
    groups: Sequence[str] = ()
    extra: Mapping[str, Sequence[str]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """`authenticationv1.UserInfo` JSON; empty fields are omitted (Go's `omitempty`)."""
        out: dict[str, Any] = {"username": self.username}
        if self.uid:
            out["uid"] = self.uid
        if self.groups:
            out["groups"] = list(self.groups)
        if self.extra:
            out["extra"] = {key: list(values) for key, values in self.extra.items()}
        return out


_USER_KEY = web.RequestKey("user", UserInfo)


@dataclass(frozen=True)
class APIResource:
    """One resource (or `<plural>/<sub>` subresource) of a group/version, for discovery."""

    group: str
    version: str
    name: str
    kind: str
    namespaced: bool
    singular: str = ""
    verbs: Sequence[str] = _ALL_VERBS
    short_names: Sequence[str] = ()
    categories: Sequence[str] = ()
    # Built-in list items carry no kind/apiVersion; CRD (unstructured) items do.
    builtin: bool = False
    # For subresources served with another group's kind (deployments/scale is autoscaling/v1).
    kind_group: str | None = None
    kind_version: str | None = None

    @property
    def group_version(self) -> str:
        """`v1` for the core group, else `<group>/<version>`."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> str:
        """The key tests use in `add_object`: `v1/pods`, `apps/v1/deployments`."""
        return f"{self.group_version}/{self.name}"

    @property
    def group_resource(self) -> str:
        """`pods`, `deployments.apps`: how Status messages name the resource."""
        return f"{self.name}.{self.group}" if self.group else self.name

    def to_json(self) -> dict[str, Any]:
        """A `metav1.APIResource` entry."""
        out: dict[str, Any] = {
            "name": self.name,
            "singularName": self.singular,
            "namespaced": self.namespaced,
        }
        if self.kind_group is not None:
            out["group"] = self.kind_group
        if self.kind_version is not None:
            out["version"] = self.kind_version
        out["kind"] = self.kind
        out["verbs"] = list(self.verbs)
        if self.short_names:
            out["shortNames"] = list(self.short_names)
        if self.categories:
            out["categories"] = list(self.categories)
        return out


def _builtin(
    group: str,
    name: str,
    kind: str,
    namespaced: bool,
    *,
    singular: str | None = None,
    verbs: Sequence[str] = _ALL_VERBS,
    short: Sequence[str] = (),
    categories: Sequence[str] = (),
    version: str = "v1",
    kind_group: str | None = None,
    kind_version: str | None = None,
) -> APIResource:
    if singular is None:
        singular = "" if "/" in name else kind.lower()
    return APIResource(
        group,
        version,
        name,
        kind,
        namespaced,
        singular,
        tuple(verbs),
        tuple(short),
        tuple(categories),
        builtin=True,
        kind_group=kind_group,
        kind_version=kind_version,
    )


def _builtin_resources() -> list[APIResource]:
    scale = {"kind_group": "autoscaling", "kind_version": "v1", "verbs": ("get", "patch", "update")}
    return [
        _builtin("", "configmaps", "ConfigMap", True, short=["cm"]),
        _builtin("", "endpoints", "Endpoints", True, singular="endpoints", short=["ep"]),
        _builtin("", "namespaces", "Namespace", False, verbs=_NAMESPACE_VERBS, short=["ns"]),
        _builtin("", "nodes", "Node", False, short=["no"]),
        _builtin("", "persistentvolumes", "PersistentVolume", False, short=["pv"]),
        _builtin("", "pods", "Pod", True, short=["po"], categories=["all"]),
        _builtin("", "pods/log", "Pod", True, verbs=["get"]),
        _builtin("", "pods/status", "Pod", True, verbs=["get", "patch", "update"]),
        _builtin("", "services", "Service", True, short=["svc"], categories=["all"]),
        _builtin("apps", "daemonsets", "DaemonSet", True, short=["ds"], categories=["all"]),
        _builtin("apps", "deployments", "Deployment", True, short=["deploy"], categories=["all"]),
        _builtin("apps", "deployments/scale", "Scale", True, **scale),  # type: ignore[arg-type]
        _builtin("apps", "replicasets", "ReplicaSet", True, short=["rs"], categories=["all"]),
        _builtin("apps", "replicasets/scale", "Scale", True, **scale),  # type: ignore[arg-type]
        _builtin("apps", "statefulsets", "StatefulSet", True, short=["sts"], categories=["all"]),
        _builtin("apps", "statefulsets/scale", "Scale", True, **scale),  # type: ignore[arg-type]
        _builtin("batch", "jobs", "Job", True, categories=["all"]),
        _builtin(
            "autoscaling",
            "horizontalpodautoscalers",
            "HorizontalPodAutoscaler",
            True,
            short=["hpa"],
            categories=["all"],
            version="v2",
        ),
        _builtin(
            "autoscaling",
            "horizontalpodautoscalers/status",
            "HorizontalPodAutoscaler",
            True,
            verbs=["get", "patch", "update"],
            version="v2",
        ),
        _builtin("apiregistration.k8s.io", "apiservices", "APIService", False),
        _builtin(
            "apiregistration.k8s.io",
            "apiservices/status",
            "APIService",
            False,
            verbs=["get", "patch", "update"],
        ),
        _builtin("authentication.k8s.io", "tokenreviews", "TokenReview", False, verbs=["create"]),
        _builtin(
            "authorization.k8s.io",
            "subjectaccessreviews",
            "SubjectAccessReview",
            False,
            verbs=["create"],
        ),
    ]


@dataclass(frozen=True)
class RequestRecord:
    """One request as the fake saw it (before any failure switch applied)."""

    method: str
    path: str
    query: dict[str, str]
    user: str | None
    body: Any
    accept: str | None


def _as_set(value: str | Iterable[str]) -> frozenset[str]:
    return frozenset([value]) if isinstance(value, str) else frozenset(value)


def _field_ok(allowed: frozenset[str], value: str) -> bool:
    return "*" in allowed or value in allowed


@dataclass(frozen=True)
class AccessRule:
    """An allow rule for SubjectAccessReview: every given field must match; `*` = any.

    `user=None` and `group=None` match any subject. A rule with `non_resource_path` matches
    only non-resource requests (exact path, or prefix when it ends in `*`, as RBAC does);
    any other rule matches only resource requests.
    """

    user: str | None
    group: str | None
    verbs: frozenset[str]
    group_names: frozenset[str]
    resources: frozenset[str]
    subresources: frozenset[str]
    namespaces: frozenset[str]
    names: frozenset[str]
    non_resource_path: str | None
    reason: str

    def matches(self, spec: Mapping[str, Any]) -> bool:
        """Whether this rule allows the SubjectAccessReview `spec`."""
        if self.user is not None and spec.get("user", "") != self.user:
            return False
        if self.group is not None and self.group not in (spec.get("groups") or []):
            return False
        resource = spec.get("resourceAttributes")
        non_resource = spec.get("nonResourceAttributes")
        if self.non_resource_path is not None:
            if not isinstance(non_resource, Mapping):
                return False
            path = str(non_resource.get("path", ""))
            want = self.non_resource_path
            path_ok = path.startswith(want[:-1]) if want.endswith("*") else path == want
            return path_ok and _field_ok(self.verbs, str(non_resource.get("verb", "")))
        if not isinstance(resource, Mapping):
            return False
        return (
            _field_ok(self.verbs, str(resource.get("verb", "")))
            and _field_ok(self.group_names, str(resource.get("group", "")))
            and _field_ok(self.resources, str(resource.get("resource", "")))
            and _field_ok(self.subresources, str(resource.get("subresource", "")))
            and _field_ok(self.namespaces, str(resource.get("namespace", "")))
            and _field_ok(self.names, str(resource.get("name", "")))
        )


@dataclass
class _Switch:
    prefix: str
    status: int | None = None
    seconds: float = 0.0
    remaining: int | None = None


@dataclass(frozen=True)
class _Event:
    rv: int
    resource: str
    type: Literal["ADDED", "MODIFIED", "DELETED"]
    obj: dict[str, Any]
    old: dict[str, Any] | None


_FieldTerm = tuple[str, bool, str]  # (field, equal?, value)


def _field_value(obj: Mapping[str, Any], name: str) -> str:
    node: Any = obj
    for part in name.split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    return "" if node is None else str(node)


@dataclass(frozen=True)
class _Filter:
    namespace: str | None
    selector: Selector
    fields: tuple[_FieldTerm, ...]

    def matches(self, obj: Mapping[str, Any]) -> bool:
        meta = obj.get("metadata") or {}
        if self.namespace is not None and meta.get("namespace", "") != self.namespace:
            return False
        if not self.selector.matches(meta.get("labels") or {}):
            return False
        return all((_field_value(obj, f) == v) == eq for f, eq, v in self.fields)


# Per-resource field selectors beyond metadata.name/metadata.namespace (pods' common ones).
_EXTRA_FIELDS = {"v1/pods": ("status.phase", "spec.nodeName")}


def _parse_fields(resource: APIResource, text: str) -> tuple[_FieldTerm, ...]:
    terms: list[_FieldTerm] = []
    supported = ("metadata.name", "metadata.namespace", *_EXTRA_FIELDS.get(resource.key, ()))
    for raw in text.split(","):
        term = raw.strip()
        if not term:
            continue
        for op in ("!=", "==", "="):
            if op in term:
                name, value = term.split(op, 1)
                break
        else:
            raise ValueError(f"invalid selector: '{text}'; can't understand '{term}'")
        eq = op != "!="
        if name not in supported:
            raise ValueError(f'field label not supported: "{name}"')
        terms.append((name, eq, value))
    return tuple(terms)


class _Watcher:
    def __init__(
        self, resource: APIResource, filt: _Filter, partial: str | None, bookmarks: bool
    ) -> None:
        self.resource = resource
        self.filter = filt
        self.partial = partial
        self.bookmarks = bookmarks
        self.queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

    def render(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        if self.partial is None:
            return dict(obj)
        return _partial(obj, self.partial)

    def convert(self, event: _Event, visible: bool) -> dict[str, Any] | None:
        """The event this watcher sees, if any: a relabel out of (into) the selector is a
        DELETED (ADDED), as the watch cache turns it."""
        new_ok = visible and self.filter.matches(event.obj)
        if event.type == "ADDED":
            return {"type": "ADDED", "object": self.render(event.obj)} if new_ok else None
        if event.type == "DELETED":
            return {"type": "DELETED", "object": self.render(event.obj)} if new_ok else None
        old_ok = event.old is not None and visible and self.filter.matches(event.old)
        if new_ok:
            kind = "MODIFIED" if old_ok else "ADDED"
            return {"type": kind, "object": self.render(event.obj)}
        if old_ok and event.old is not None:
            # The cacher sends the previous object, stamped with the event's resourceVersion.
            old = copy.deepcopy(event.old)
            old["metadata"]["resourceVersion"] = str(event.rv)
            return {"type": "DELETED", "object": self.render(old)}
        return None


def _partial(obj: Mapping[str, Any], version: str) -> dict[str, Any]:
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": f"{_META_GROUP}/{version}",
        "metadata": copy.deepcopy(obj.get("metadata") or {}),
    }


def _negotiate(accept: str | None, as_kind: str) -> tuple[bool, str | None]:
    """(acceptable, metadata-only version or None) for an Accept header; JSON only."""
    if not accept:
        return True, None
    for part in accept.split(","):
        pieces = [piece.strip() for piece in part.split(";")]
        media = pieces[0].lower()
        if media not in ("application/json", "application/*", "*/*"):
            continue
        params = {}
        for piece in pieces[1:]:
            if "=" in piece:
                key, value = piece.split("=", 1)
                params[key.strip()] = value.strip()
        wanted = params.get("as")
        if wanted is None:
            return True, None
        if (
            wanted == as_kind
            and params.get("g") == _META_GROUP
            and params.get("v") in ("v1", "v1beta1")
        ):
            return True, params["v"]
    return False, None


def _encode_continue(rv: int, key: tuple[str, str]) -> str:
    start = f"{key[0]}/{key[1]}" if key[0] else key[1]
    token = {"v": "meta.k8s.io/v1", "rv": rv, "start": start + "\x00"}
    return base64.urlsafe_b64encode(orjson.dumps(token)).decode().rstrip("=")


def _decode_continue(token: str) -> tuple[str, str]:
    padded = token + "=" * (-len(token) % 4)
    data = orjson.loads(base64.urlsafe_b64decode(padded))
    start = str(data["start"]).rstrip("\x00")
    ns, _, name = start.rpartition("/")
    return ns, name


class FakeKubeAPIServer:
    """An in-memory kube-apiserver on `https://127.0.0.1:<port>`; see the module docstring.

    Public state tests may change directly: `client_tokens` (who may call the fake),
    `tokens` (the TokenReview table), `rules` (SubjectAccessReview allow rules, see `allow`),
    `deny_explicitly`, `sar_deny_reason`, `token_review_error`, `auth_configmap_error`,
    `bookmark_interval`, `requests` (the log).
    """

    def __init__(
        self,
        *,
        token: str = "fake-kube-apiserver-token",
        username: str = _DEFAULT_USER,
        port: int = 0,
        history_size: int = 100,
        bookmark_interval: float = 60.0,
        seed: bool = True,
        workdir: Path | str | None = None,
    ) -> None:
        self.token = token
        self.username = username
        self.client_tokens: dict[str, UserInfo] = {
            token: UserInfo(username, groups=("system:serviceaccounts", "system:authenticated"))
        }
        self.tokens: dict[str, UserInfo] = {}
        self.token_review_error = "invalid bearer token"
        self.rules: list[AccessRule] = []
        self.deny_explicitly = False
        # RBAC gives no reason when no rule matched (only when a binding is broken).
        self.sar_deny_reason = ""
        self.auth_configmap_error: Literal[403, 404] | None = None
        self.bookmark_interval = bookmark_interval
        self.requests: list[RequestRecord] = []
        self._port = port
        self._resources: dict[str, APIResource] = {}
        self._objects: dict[str, dict[tuple[str, str], dict[str, Any]]] = {}
        self._rv = 1
        self._history: deque[_Event] = deque(maxlen=max(1, history_size))
        self._floor = self._rv  # events after this resourceVersion are all still in history
        self._watchers: set[_Watcher] = set()
        self._switches: list[_Switch] = []
        self._runner: web.AppRunner | None = None
        for resource in _builtin_resources():
            self._register(resource)

        if workdir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="fake-kube-apiserver-"))
            self._cleanup = weakref.finalize(self, shutil.rmtree, self._dir, True)
        else:
            self._dir = Path(workdir)
            self._dir.mkdir(parents=True, exist_ok=True)
        self.ca = CertificateAuthority("fake-kube-apiserver-ca")
        self.ca_file = self.ca.write(self._dir, "ca")
        self._cert_file, self._key_file = self.ca.issue_server().write(self._dir, "apiserver")
        if seed:
            for ns in ("default", "kube-node-lease", "kube-public", "kube-system"):
                self.add_object("v1/namespaces", {"metadata": {"name": ns}, "spec": {}})

    # --- lifecycle -----------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The listening port (0 before the first `start`)."""
        return self._port

    @property
    def url(self) -> str:
        """`https://127.0.0.1:<port>`."""
        return f"https://127.0.0.1:{self._port}"

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts only this server's CA."""
        return ssl.create_default_context(cafile=str(self.ca_file))

    async def start(self) -> None:
        """Listen on 127.0.0.1 (a free port the first time, the same port after `stop`)."""
        if self._runner is not None:
            return
        app = web.Application(middlewares=[self._middleware])
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self._cert_file, self._key_file)
        # Handler cancellation: a client that hangs up ends its watch at once (as a Go request
        # context does), instead of at the next write.
        runner = web.AppRunner(
            app, access_log=None, shutdown_timeout=0.5, handler_cancellation=True
        )
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", self._port, ssl_context=context)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        server = site._server
        assert isinstance(server, asyncio.base_events.Server)
        self._port = server.sockets[0].getsockname()[1]
        self._runner = runner

    async def stop(self) -> None:
        """Close open watches and the listener; state is kept, so `start` resumes it."""
        self.expire_watches()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> FakeKubeAPIServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def kubeconfig(self, path: Path | str, *, token: str | None = None) -> Path:
        """Write a kubeconfig (JSON, which is YAML) with the embedded CA and a bearer token."""
        path = Path(path)
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "fake",
                    "cluster": {
                        "server": self.url,
                        "certificate-authority-data": base64.b64encode(self.ca.cert_pem).decode(),
                    },
                }
            ],
            "users": [{"name": "fake", "user": {"token": token or self.token}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
            "current-context": "fake",
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(orjson.dumps(config, option=orjson.OPT_INDENT_2))
        return path

    # --- resources and objects ---------------------------------------------------------------

    def _register(self, resource: APIResource) -> None:
        self._resources[resource.key] = resource
        if "/" not in resource.name:
            self._objects.setdefault(resource.key, {})

    def add_resource(
        self,
        group: str,
        version: str,
        plural: str,
        kind: str,
        namespaced: bool,
        singular: str | None = None,
        *,
        short_names: Sequence[str] = (),
        verbs: Sequence[str] = _ALL_VERBS,
        categories: Sequence[str] = (),
    ) -> APIResource:
        """Register a CRD-like resource; discovery shows it at once."""
        resource = APIResource(
            group,
            version,
            plural,
            kind,
            namespaced,
            kind.lower() if singular is None else singular,
            tuple(verbs),
            tuple(short_names),
            tuple(categories),
        )
        self._register(resource)
        return resource

    def remove_resource(self, group: str, version: str, plural: str) -> None:
        """Unregister a resource (and drop its objects, without events)."""
        key = APIResource(group, version, plural, "", False).key
        self._resources.pop(key, None)
        self._objects.pop(key, None)

    def resource(self, key: str) -> APIResource:
        """Resolve `v1/pods`, `apps/v1/deployments` or a unique plural such as `pods`."""
        if key in self._resources:
            return self._resources[key]
        if "/" not in key:
            found = [r for r in self._resources.values() if r.name == key]
            if len(found) == 1:
                return found[0]
            core = [r for r in found if r.group == ""]
            if len(core) == 1:
                return core[0]
        raise KeyError(f"unknown resource {key!r}")

    def _key(self, resource: APIResource, name: str, namespace: str | None) -> tuple[str, str]:
        return (namespace or "default", name) if resource.namespaced else ("", name)

    def get_object(
        self, resource: str, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None:
        """A copy of a stored object, or None."""
        res = self.resource(resource)
        obj = self._objects[res.key].get(self._key(res, name, namespace))
        return copy.deepcopy(obj) if obj is not None else None

    def list_objects(self, resource: str) -> list[dict[str, Any]]:
        """Copies of every stored object of `resource`."""
        res = self.resource(resource)
        return [copy.deepcopy(obj) for _, obj in sorted(self._objects[res.key].items())]

    def _next_rv(self) -> int:
        self._rv += 1
        return self._rv

    def _normalize(
        self, res: APIResource, obj: Mapping[str, Any], rv: int, previous: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        body = copy.deepcopy(dict(obj))
        meta = dict(body.pop("metadata", None) or {})
        body.pop("kind", None)
        body.pop("apiVersion", None)
        if not meta.get("name"):
            raise ValueError("metadata.name is required")
        if res.namespaced:
            meta["namespace"] = meta.get("namespace") or "default"
        else:
            meta.pop("namespace", None)
        if previous is not None:
            # uid and creation time are immutable, as on the real server.
            meta["uid"] = previous["metadata"]["uid"]
            meta["creationTimestamp"] = previous["metadata"]["creationTimestamp"]
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", _now_rfc3339())
        meta["resourceVersion"] = str(rv)
        return {"kind": res.kind, "apiVersion": res.group_version, "metadata": meta, **body}

    def add_object(self, resource: str, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Create an object (kind, apiVersion, uid, resourceVersion filled in); a copy of it.

        Namespaced objects without `metadata.namespace` go to `default`. Raises ValueError if
        the object exists.
        """
        res = self.resource(resource)
        meta = obj.get("metadata") or {}
        key = self._key(res, str(meta.get("name", "")), meta.get("namespace"))
        if key in self._objects[res.key]:
            raise ValueError(f'{res.group_resource} "{key[1]}" already exists')
        stored = self._normalize(res, obj, self._next_rv(), None)
        self._objects[res.key][key] = stored
        self._record(res, "ADDED", stored, None)
        return copy.deepcopy(stored)

    def update_object(self, resource: str, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Replace an existing object (KeyError if missing); a copy of the new version."""
        res = self.resource(resource)
        meta = obj.get("metadata") or {}
        key = self._key(res, str(meta.get("name", "")), meta.get("namespace"))
        previous = self._objects[res.key].get(key)
        if previous is None:
            raise KeyError(f'{res.group_resource} "{key[1]}" not found')
        stored = self._normalize(res, obj, self._next_rv(), previous)
        self._objects[res.key][key] = stored
        self._record(res, "MODIFIED", stored, previous)
        return copy.deepcopy(stored)

    def apply_object(self, resource: str, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Create or replace."""
        res = self.resource(resource)
        meta = obj.get("metadata") or {}
        key = self._key(res, str(meta.get("name", "")), meta.get("namespace"))
        if key in self._objects[res.key]:
            return self.update_object(resource, obj)
        return self.add_object(resource, obj)

    def set_labels(
        self, resource: str, name: str, labels: Mapping[str, str], namespace: str | None = None
    ) -> dict[str, Any]:
        """Replace an object's labels (a MODIFIED event, or DELETED/ADDED for selectors)."""
        current = self.get_object(resource, name, namespace)
        if current is None:
            raise KeyError(f"{resource} {name!r} not found")
        current["metadata"]["labels"] = dict(labels)
        return self.update_object(resource, current)

    def delete_object(
        self, resource: str, name: str, namespace: str | None = None
    ) -> dict[str, Any]:
        """Delete an object (KeyError if missing); its final state, at the deletion's RV."""
        res = self.resource(resource)
        previous = self._objects[res.key].pop(self._key(res, name, namespace))
        final = copy.deepcopy(previous)
        final["metadata"]["resourceVersion"] = str(self._next_rv())
        self._record(res, "DELETED", final, previous)
        return copy.deepcopy(final)

    @property
    def resource_version(self) -> str:
        """The current (latest) resourceVersion."""
        return str(self._rv)

    # --- the authentication ConfigMap ------------------------------------------------------

    def set_authentication_configmap(
        self,
        client_ca: bytes | str | None = None,
        requestheader_ca: bytes | str | None = None,
        username_headers: Sequence[str] = ("X-Remote-User",),
        group_headers: Sequence[str] = ("X-Remote-Group",),
        extra_prefixes: Sequence[str] = ("X-Remote-Extra-",),
        allowed_names: Sequence[str] = (),
        *,
        uid_headers: Sequence[str] | None = None,
    ) -> dict[str, Any]:
        """Create or replace `kube-system/extension-apiserver-authentication` as kube-apiserver
        writes it: PEM strings, and the header lists as JSON-encoded string arrays (the
        requestheader keys only when a requestheader CA is given)."""

        def pem(value: bytes | str) -> str:
            return value.decode() if isinstance(value, bytes) else value

        def strings(values: Sequence[str]) -> str:
            return orjson.dumps(list(values)).decode()

        data: dict[str, str] = {}
        if client_ca is not None:
            data["client-ca-file"] = pem(client_ca)
        if requestheader_ca is not None:
            data["requestheader-allowed-names"] = strings(allowed_names)
            data["requestheader-client-ca-file"] = pem(requestheader_ca)
            data["requestheader-extra-headers-prefix"] = strings(extra_prefixes)
            data["requestheader-group-headers"] = strings(group_headers)
            if uid_headers is not None:
                data["requestheader-uid-headers"] = strings(uid_headers)
            data["requestheader-username-headers"] = strings(username_headers)
        return self.apply_object(
            "v1/configmaps",
            {
                "metadata": {"name": AUTH_CONFIGMAP_NAME, "namespace": AUTH_CONFIGMAP_NAMESPACE},
                "data": data,
            },
        )

    def _auth_configmap_hidden(self, res: APIResource, ns: str, name: str) -> bool:
        return (
            self.auth_configmap_error == 404
            and res.key == "v1/configmaps"
            and (ns, name) == (AUTH_CONFIGMAP_NAMESPACE, AUTH_CONFIGMAP_NAME)
        )

    def _visible(self, res: APIResource, obj: Mapping[str, Any]) -> bool:
        meta = obj.get("metadata") or {}
        return not self._auth_configmap_hidden(
            res, str(meta.get("namespace", "")), str(meta.get("name", ""))
        )

    # --- authorization tables ----------------------------------------------------------------

    def allow(
        self,
        user: str | None = None,
        group: str | None = None,
        verb: str | Iterable[str] = "*",
        group_name: str | Iterable[str] = "*",
        resource: str | Iterable[str] = "*",
        subresource: str | Iterable[str] = "*",
        namespace: str | Iterable[str] = "*",
        name: str | Iterable[str] = "*",
        non_resource_path: str | None = None,
        *,
        reason: str | None = None,
    ) -> AccessRule:
        """Append a SubjectAccessReview allow rule (first match wins); returns it."""
        if reason is None:
            binding = f"fake-rule-{len(self.rules)}"
            subject = f'User "{user}"' if user is not None else f'Group "{group}"'
            if user is None and group is None:
                subject = 'Group "system:authenticated"'
            reason = (
                f'RBAC: allowed by ClusterRoleBinding "{binding}" of ClusterRole "{binding}" '
                f"to {subject}"
            )
        rule = AccessRule(
            user,
            group,
            _as_set(verb),
            _as_set(group_name),
            _as_set(resource),
            _as_set(subresource),
            _as_set(namespace),
            _as_set(name),
            non_resource_path,
            reason,
        )
        self.rules.append(rule)
        return rule

    # --- failure switches ------------------------------------------------------------------

    def fail(self, prefix: str, status: int | None = 500, *, times: int | None = None) -> None:
        """Make requests whose path starts with `prefix` fail: a Status with `status`, or a
        connection reset when `status` is None; for the next `times` requests, or until
        `heal`."""
        self._switches.append(_Switch(prefix, status=status, remaining=times))

    def delay(self, prefix: str, seconds: float, *, times: int | None = None) -> None:
        """Delay requests whose path starts with `prefix` by `seconds` before answering."""
        self._switches.append(_Switch(prefix, status=200, seconds=seconds, remaining=times))

    def heal(self, prefix: str | None = None) -> None:
        """Remove the failure and delay switches for `prefix` (all when None)."""
        self._switches = [s for s in self._switches if prefix is not None and s.prefix != prefix]

    # --- request log -------------------------------------------------------------------------

    def count(self, method: str | None = None, path_prefix: str = "") -> int:
        """How many logged requests have `method` (any when None) and a path with the prefix."""
        return sum(
            1
            for r in self.requests
            if (method is None or r.method == method.upper()) and r.path.startswith(path_prefix)
        )

    def clear_log(self) -> None:
        """Forget the logged requests."""
        self.requests.clear()

    # --- watch plumbing ----------------------------------------------------------------------

    def _record(
        self,
        res: APIResource,
        kind: Literal["ADDED", "MODIFIED", "DELETED"],
        obj: dict[str, Any],
        old: dict[str, Any] | None,
    ) -> None:
        if len(self._history) == self._history.maxlen:
            self._floor = self._history[0].rv
        event = _Event(self._rv, res.key, kind, obj, old)
        self._history.append(event)
        visible = self._visible(res, obj)
        for watcher in self._watchers:
            if watcher.resource.key == res.key:
                converted = watcher.convert(event, visible)
                if converted is not None:
                    watcher.queue.put_nowait(converted)

    def expire_watches(self) -> int:
        """End every open watch stream cleanly (as a server-side timeout does); how many."""
        for watcher in self._watchers:
            watcher.queue.put_nowait(None)
        return len(self._watchers)

    def send_bookmarks(self) -> None:
        """Send a BOOKMARK at the current resourceVersion to watches that allow bookmarks."""
        for watcher in self._watchers:
            if watcher.bookmarks:
                watcher.queue.put_nowait(self._bookmark(watcher))

    def _bookmark(self, watcher: _Watcher) -> dict[str, Any]:
        res = watcher.resource
        obj: dict[str, Any] = {
            "kind": "PartialObjectMetadata" if watcher.partial else res.kind,
            "apiVersion": f"{_META_GROUP}/{watcher.partial}"
            if watcher.partial
            else res.group_version,
            "metadata": {"resourceVersion": str(self._rv), "creationTimestamp": None},
        }
        return {"type": "BOOKMARK", "object": obj}

    @property
    def open_watches(self) -> int:
        """How many watch streams are open."""
        return len(self._watchers)

    # --- HTTP ------------------------------------------------------------------------------

    def _authenticate(self, request: web.Request) -> UserInfo | None:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return self.client_tokens.get(token.strip())

    @web.middleware
    async def _middleware(
        self,
        request: web.Request,
        handler: Any,
    ) -> web.StreamResponse:
        body: Any = None
        if request.body_exists:
            raw = await request.read()
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError:
                body = raw.decode(errors="replace")
        user = self._authenticate(request)
        self.requests.append(
            RequestRecord(
                request.method,
                request.path,
                dict(request.query),
                user.username if user else None,
                body,
                request.headers.get("Accept"),
            )
        )
        for switch in list(self._switches):
            if not request.path.startswith(switch.prefix):
                continue
            if switch.remaining is not None:
                switch.remaining -= 1
                if switch.remaining <= 0:
                    self._switches.remove(switch)
            if switch.seconds:
                await asyncio.sleep(switch.seconds)
            if switch.status is None:
                self._reset(request)
                return web.Response(status=500)
            if switch.status >= 400:
                return _status(
                    switch.status,
                    f"Internal error occurred: injected failure ({switch.status})",
                    details={"causes": [{"message": "injected failure"}]},
                )
        if user is None:
            return _status(401, "Unauthorized")
        request[_USER_KEY] = user
        response: web.StreamResponse = await handler(request)
        return response

    @staticmethod
    def _reset(request: web.Request) -> None:
        transport = request.transport
        if transport is None:
            return
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # Linger 0: close() sends a TCP RST instead of a FIN, i.e. "connection reset".
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/") or "/"
        if path == "/version":
            return _json(
                {"major": "1", "minor": "28", "gitVersion": _GIT_VERSION, "platform": "linux/amd64"}
            )
        if path in ("/healthz", "/livez", "/readyz"):
            return web.Response(text="ok")
        parts = path.strip("/").split("/")
        if parts[0] == "api":
            if len(parts) == 1:
                return _json(self._api_versions(request))
            group, version, rest = "", parts[1], parts[2:]
        elif parts[0] == "apis":
            if len(parts) == 1:
                return _json(self._group_list())
            group = parts[1]
            if len(parts) == 2:
                api_group = self._group(group)
                return _json(api_group) if api_group else _not_found_path()
            version, rest = parts[2], parts[3:]
        else:
            return _not_found_path()
        in_gv = [r for r in self._resources.values() if (r.group, r.version) == (group, version)]
        if not in_gv:
            return _not_found_path()
        if not rest:
            return _json(self._resource_list(group, version, in_gv))
        if request.method == "POST" and len(rest) == 1:
            if (group, version, rest[0]) == ("authentication.k8s.io", "v1", "tokenreviews"):
                return await self._token_review(request)
            if (group, version, rest[0]) == ("authorization.k8s.io", "v1", "subjectaccessreviews"):
                return await self._subject_access_review(request)
        if len(rest) >= 3 and rest[0] == "namespaces":
            namespace: str | None = rest[1]
            plural, tail = rest[2], rest[3:]
        else:
            namespace, plural, tail = None, rest[0], rest[1:]
        res = self._resources.get(f"{group}/{version}/{plural}" if group else f"{version}/{plural}")
        if res is None or (namespace is not None and not res.namespaced) or len(tail) > 2:
            return _not_found_path()
        if len(tail) == 2:
            return self._subresource(request, res, namespace, tail[0], tail[1])
        name = tail[0] if tail else None
        if name is not None and res.namespaced and namespace is None:
            return _not_found_path()
        if request.method != "GET":
            return _status(405, "the server does not allow this method on the requested resource")
        user = request[_USER_KEY]
        verb = "get" if name else "list"
        watch = request.query.get("watch", "").lower() in ("1", "true")
        if watch:
            verb = "watch"
        if (
            self.auth_configmap_error == 403
            and res.key == "v1/configmaps"
            and namespace in (None, AUTH_CONFIGMAP_NAMESPACE)
            and name in (None, AUTH_CONFIGMAP_NAME)
        ):
            scope = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
            what = f'configmaps "{name}"' if name else "configmaps"
            details = {"name": name, "kind": "configmaps"} if name else {"kind": "configmaps"}
            return _status(
                403,
                f'{what} is forbidden: User "{user.username}" cannot {verb} resource '
                f'"configmaps" in API group ""{scope}',
                details=details,
            )
        if name is not None and not watch:
            return self._get(request, res, namespace or "", name)
        return await self._list_or_watch(request, res, namespace, name, watch)

    # --- discovery ---------------------------------------------------------------------------

    def _api_versions(self, request: web.Request) -> dict[str, Any]:
        return {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": f"127.0.0.1:{self._port}"}
            ],
        }

    def _group_versions(self) -> dict[str, list[str]]:
        groups: dict[str, list[str]] = {}
        for res in self._resources.values():
            if res.group and res.version not in groups.setdefault(res.group, []):
                groups[res.group].append(res.version)
        return groups

    def _group(self, group: str) -> dict[str, Any] | None:
        versions = self._group_versions().get(group)
        if not versions:
            return None
        entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {
            "kind": "APIGroup",
            "apiVersion": "v1",
            "name": group,
            "versions": entries,
            "preferredVersion": entries[0],
        }

    def _group_list(self) -> dict[str, Any]:
        groups = []
        for name in self._group_versions():
            group = self._group(name)
            assert group is not None
            del group["kind"], group["apiVersion"]
            groups.append(group)
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}

    def _resource_list(
        self, group: str, version: str, resources: list[APIResource]
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"kind": "APIResourceList"}
        # The legacy /api/v1 document carries no apiVersion; group documents do.
        if group:
            body["apiVersion"] = "v1"
        body["groupVersion"] = f"{group}/{version}" if group else version
        body["resources"] = [r.to_json() for r in resources]
        return body

    # --- reads -----------------------------------------------------------------------------

    def _get(self, request: web.Request, res: APIResource, ns: str, name: str) -> web.Response:
        ok, partial = _negotiate(request.headers.get("Accept"), "PartialObjectMetadata")
        if not ok:
            return _not_acceptable()
        obj = self._objects[res.key].get((ns, name))
        if obj is None or self._auth_configmap_hidden(res, ns, name):
            details = {"name": name, "kind": res.name}
            if res.group:
                details = {"name": name, "group": res.group, "kind": res.name}
            return _status(404, f'{res.group_resource} "{name}" not found', details=details)
        return _json(_partial(obj, partial) if partial else obj)

    def _subresource(
        self, request: web.Request, res: APIResource, namespace: str | None, name: str, sub: str
    ) -> web.Response:
        """GET of `status` (the object) and `scale` (an autoscaling/v1 Scale built from the
        object, with `status.selector` as the string the HPA controller parses)."""
        if f"{res.key}/{sub}" not in self._resources or (res.namespaced and namespace is None):
            return _not_found_path()
        if request.method != "GET":
            return _status(405, "the server does not allow this method on the requested resource")
        obj = self._objects[res.key].get((namespace or "", name))
        if obj is None:
            details = {"name": name, "group": res.group, "kind": res.name}
            return _status(404, f'{res.group_resource} "{name}" not found', details=details)
        if sub != "scale":
            return _json(obj)
        meta = obj["metadata"]
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        scale_status: dict[str, Any] = {"replicas": status.get("replicas", 0)}
        selector = str(label_selector_as_selector(spec.get("selector")))
        if selector:
            scale_status["selector"] = selector
        return _json(
            {
                "kind": "Scale",
                "apiVersion": "autoscaling/v1",
                "metadata": {
                    k: meta[k]
                    for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                    if k in meta
                },
                "spec": {"replicas": spec.get("replicas", 1)},
                "status": scale_status,
            }
        )

    def _filter(
        self, request: web.Request, res: APIResource, namespace: str | None, name: str | None
    ) -> _Filter | web.Response:
        try:
            selector = parse_selector(request.query.get("labelSelector", ""))
        except SelectorError as err:
            return _status(400, str(err))
        try:
            fields = _parse_fields(res, request.query.get("fieldSelector", ""))
        except ValueError as err:
            return _status(400, str(err))
        if name is not None:
            fields = (*fields, ("metadata.name", True, name))
        return _Filter(namespace, selector, fields)

    async def _list_or_watch(
        self,
        request: web.Request,
        res: APIResource,
        namespace: str | None,
        name: str | None,
        watch: bool,
    ) -> web.StreamResponse:
        as_kind = "PartialObjectMetadata" if watch else "PartialObjectMetadataList"
        ok, partial = _negotiate(request.headers.get("Accept"), as_kind)
        if not ok:
            return _not_acceptable()
        filt = self._filter(request, res, namespace, name)
        if isinstance(filt, web.Response):
            return filt
        if watch:
            return await self._watch(request, res, filt, partial)
        items = [
            obj
            for _, obj in sorted(self._objects[res.key].items())
            if filt.matches(obj) and self._visible(res, obj)
        ]
        token = request.query.get("continue")
        if token:
            try:
                after = _decode_continue(token)
            except (ValueError, KeyError, TypeError, orjson.JSONDecodeError):
                return _status(400, "continue key is not valid: illegal base64 data")
            items = [
                o
                for o in items
                if (o["metadata"].get("namespace", ""), o["metadata"]["name"]) > after
            ]
        meta: dict[str, Any] = {"resourceVersion": str(self._rv)}
        limit = request.query.get("limit", "")
        if limit.isdigit() and 0 < int(limit) < len(items):
            last = items[int(limit) - 1]["metadata"]
            meta["continue"] = _encode_continue(self._rv, (last.get("namespace", ""), last["name"]))
            meta["remainingItemCount"] = len(items) - int(limit)
            items = items[: int(limit)]
        if partial:
            return _json(
                {
                    "kind": "PartialObjectMetadataList",
                    "apiVersion": f"{_META_GROUP}/{partial}",
                    "metadata": meta,
                    "items": [_partial(o, partial) for o in items],
                }
            )
        if res.builtin:
            # Typed lists serialize their items without TypeMeta.
            rendered = [
                {k: v for k, v in o.items() if k not in ("kind", "apiVersion")} for o in items
            ]
        else:
            rendered = items
        return _json(
            {
                "kind": f"{res.kind}List",
                "apiVersion": res.group_version,
                "metadata": meta,
                "items": rendered,
            }
        )

    async def _watch(
        self, request: web.Request, res: APIResource, filt: _Filter, partial: str | None
    ) -> web.StreamResponse:
        rv_text = request.query.get("resourceVersion", "")
        if rv_text and not rv_text.isdigit():
            return _status(400, f'resourceVersion: Invalid value: "{rv_text}": invalid syntax')
        timeout_text = request.query.get("timeoutSeconds", "")
        timeout = float(timeout_text) if timeout_text.isdigit() and int(timeout_text) > 0 else None
        bookmarks = request.query.get("allowWatchBookmarks", "").lower() in ("1", "true")
        watcher = _Watcher(res, filt, partial, bookmarks)
        expired = None
        requested = int(rv_text) if rv_text else 0
        # Replay and registration happen without an await in between, so no event is lost.
        if requested == 0:
            for _, obj in sorted(self._objects[res.key].items()):
                if filt.matches(obj) and self._visible(res, obj):
                    watcher.queue.put_nowait({"type": "ADDED", "object": watcher.render(obj)})
        elif requested < self._floor:
            expired = status_object(
                410, f"too old resource version: {requested} ({self._floor})", "Expired"
            )
        else:
            for event in self._history:
                if event.rv > requested and event.resource == res.key:
                    converted = watcher.convert(event, self._visible(res, event.obj))
                    if converted is not None:
                        watcher.queue.put_nowait(converted)
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        if expired is not None:
            await response.write(orjson.dumps({"type": "ERROR", "object": expired}) + b"\n")
            await response.write_eof()
            return response
        self._watchers.add(watcher)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout if timeout is not None else None
        try:
            while True:
                now = loop.time()
                waits = [] if deadline is None else [deadline - now]
                if bookmarks:
                    waits.append(self.bookmark_interval)
                wait = min(waits) if waits else None
                if wait is not None and wait <= 0:
                    break
                try:
                    item = await asyncio.wait_for(watcher.queue.get(), wait)
                except TimeoutError:
                    if deadline is not None and loop.time() >= deadline:
                        break
                    item = self._bookmark(watcher)
                if item is None:
                    break
                await response.write(orjson.dumps(item) + b"\n")
            await response.write_eof()
        except ConnectionResetError:
            # The client went away: nothing left to write to.
            pass
        finally:
            self._watchers.discard(watcher)
        return response

    # --- reviews ---------------------------------------------------------------------------

    async def _token_review(self, request: web.Request) -> web.Response:
        body = await _body(request)
        if body is None:
            return _status(400, "the body of the request was in an unknown format")
        spec = body.get("spec") or {}
        token = str(spec.get("token", ""))
        status: dict[str, Any]
        info = self.tokens.get(token)
        if info is not None:
            status = {"authenticated": True, "user": info.to_json()}
            if spec.get("audiences"):
                status["audiences"] = list(spec["audiences"])
        else:
            # `authenticated` is omitempty in Go: a failed review simply lacks it.
            status = {"user": {}}
            if self.token_review_error:
                status["error"] = self.token_review_error
        return _json(
            {
                "kind": "TokenReview",
                "apiVersion": "authentication.k8s.io/v1",
                "metadata": {"creationTimestamp": None},
                "spec": spec,
                "status": status,
            },
            201,
        )

    async def _subject_access_review(self, request: web.Request) -> web.Response:
        body = await _body(request)
        if body is None:
            return _status(400, "the body of the request was in an unknown format")
        spec = body.get("spec") or {}
        has_resource = spec.get("resourceAttributes") is not None
        has_non_resource = spec.get("nonResourceAttributes") is not None
        if has_resource == has_non_resource:
            return _status(
                422,
                'SubjectAccessReview.authorization.k8s.io "" is invalid: spec.resourceAttributes: '
                "Invalid value: exactly one of nonResourceAttributes or resourceAttributes "
                "must be specified",
            )
        if not spec.get("user") and not spec.get("groups"):
            return _status(
                422,
                'SubjectAccessReview.authorization.k8s.io "" is invalid: spec.user: '
                "Invalid value: at least one of user or group must be specified",
            )
        status: dict[str, Any] = {"allowed": False}
        for rule in self.rules:
            if rule.matches(spec):
                status = {"allowed": True, "reason": rule.reason}
                break
        else:
            if self.deny_explicitly:
                status["denied"] = True
            if self.sar_deny_reason:
                status["reason"] = self.sar_deny_reason
        return _json(
            {
                "kind": "SubjectAccessReview",
                "apiVersion": "authorization.k8s.io/v1",
                "metadata": {"creationTimestamp": None},
                "spec": spec,
                "status": status,
            },
            201,
        )


def _not_acceptable() -> web.Response:
    return _status(
        406,
        "only the following media types are accepted: application/json, "
        "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1",
    )


async def _body(request: web.Request) -> dict[str, Any] | None:
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        return None
    return body if isinstance(body, dict) else None


@contextlib.asynccontextmanager
async def running_fake_kube_apiserver(**options: Any) -> AsyncIterator[FakeKubeAPIServer]:
    """Start a `FakeKubeAPIServer(**options)` and stop it (and its temp files) on exit."""
    server = FakeKubeAPIServer(**options)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
        cleanup = getattr(server, "_cleanup", None)
        if cleanup is not None:
            cleanup()
