"""The audit.k8s.io/v1 Event as k8s.io/apiserver writes it.

JSON: the fields of pkg/apis/audit/v1/types.go in their Go order, `omitempty` honoured, map keys
sorted and `<`, `>`, `&`, U+2028, U+2029 escaped as encoding/json does; timestamps are
metav1.MicroTime (RFC 3339 in UTC with microseconds). `legacy` is pkg/audit/format.go's one-line
text. Request headers are never part of an event (nor of these types), so no credential can
reach an audit log.
"""

import ipaddress
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import orjson

from adapter.audit.levels import Level, Stage
from adapter.auth.request_info import RequestInfo
from adapter.auth.user import UserInfo
from adapter.golang.quote import go_quote

__all__ = [
    "API_VERSION",
    "TRUNCATED_ANNOTATION",
    "Event",
    "ObjectReference",
    "event_list_json",
    "legacy_line",
    "micro_time",
    "object_reference",
    "response_status",
    "source_ips",
    "truncate_user_agent",
]

API_VERSION = "audit.k8s.io/v1"
TRUNCATED_ANNOTATION = "audit.k8s.io/truncated"
_MAX_USER_AGENT = 1024
_GO_HTML_ESCAPES = (
    (b"<", b"\\u003c"),
    (b">", b"\\u003e"),
    (b"&", b"\\u0026"),
    ("\u2028".encode(), b"\\u2028"),
    ("\u2029".encode(), b"\\u2029"),
)


@dataclass(frozen=True, slots=True)
class ObjectReference:
    resource: str = ""
    namespace: str = ""
    name: str = ""
    api_group: str = ""
    api_version: str = ""
    subresource: str = ""

    def as_json(self) -> dict[str, str]:
        # Go order: resource, namespace, name, uid, apiGroup, apiVersion, resourceVersion,
        # subresource; every field omitempty.
        pairs = (
            ("resource", self.resource),
            ("namespace", self.namespace),
            ("name", self.name),
            ("apiGroup", self.api_group),
            ("apiVersion", self.api_version),
            ("subresource", self.subresource),
        )
        return {key: value for key, value in pairs if value}


def object_reference(info: RequestInfo) -> ObjectReference | None:
    """LogRequestMetadata's objectRef: resource requests only."""
    if not info.is_resource_request:
        return None
    return ObjectReference(
        resource=info.resource,
        namespace=info.namespace,
        name=info.name,
        api_group=info.api_group,
        api_version=info.api_version,
        subresource=info.subresource,
    )


@dataclass(frozen=True)
class Event:
    """One audit event at one stage; immutable, so backends may hold it while the request
    goes on (Go's buffered backend deep-copies for the same reason)."""

    level: Level
    audit_id: str
    stage: Stage
    request_uri: str
    verb: str
    user: UserInfo | None
    source_ips: tuple[str, ...]
    user_agent: str
    object_ref: ObjectReference | None
    request_received_ns: int
    stage_ns: int
    # metav1.Status fields as JSON ({"metadata": {}, ..., "code": n}).
    response_status: Mapping[str, Any] | None = None
    # Raw compact JSON of the object sent back (RequestResponse level only).
    response_object: bytes | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)
    # The user the request acted as (Impersonate-* headers), from the impersonation filter on.
    impersonated_user: UserInfo | None = None

    @cached_property
    def json(self) -> bytes:
        """The event as Go's encoder writes it, without the trailing newline."""
        return _encode(self)

    def truncated(self) -> "Event":
        """The truncate plugin's copy: request and response objects dropped, annotated."""
        return replace(
            self,
            response_object=None,
            annotations={**self.annotations, TRUNCATED_ANNOTATION: "true"},
        )


def _user_json(user: UserInfo | None) -> dict[str, Any]:
    if user is None:
        return {}
    doc: dict[str, Any] = {}
    if user.name:
        doc["username"] = user.name
    if user.uid:
        doc["uid"] = user.uid
    if user.groups:
        doc["groups"] = list(user.groups)
    if user.extra:
        doc["extra"] = {key: list(user.extra[key]) for key in sorted(user.extra)}
    return doc


def _document(event: Event) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "kind": "Event",
        "apiVersion": API_VERSION,
        "level": event.level.value,
        "auditID": event.audit_id,
        "stage": event.stage.value,
        "requestURI": event.request_uri,
        "verb": event.verb,
        "user": _user_json(event.user),
    }
    if event.impersonated_user is not None:
        doc["impersonatedUser"] = _user_json(event.impersonated_user)
    if event.source_ips:
        doc["sourceIPs"] = list(event.source_ips)
    if event.user_agent:
        doc["userAgent"] = event.user_agent
    if event.object_ref is not None:
        doc["objectRef"] = event.object_ref.as_json()
    if event.response_status is not None:
        doc["responseStatus"] = event.response_status
    if event.response_object is not None:
        doc["responseObject"] = orjson.Fragment(event.response_object)
    doc["requestReceivedTimestamp"] = micro_time(event.request_received_ns)
    doc["stageTimestamp"] = micro_time(event.stage_ns)
    if event.annotations:
        doc["annotations"] = {key: event.annotations[key] for key in sorted(event.annotations)}
    return doc


def _encode(event: Event) -> bytes:
    doc = _document(event)
    try:
        data = orjson.dumps(doc)
    except orjson.JSONEncodeError:
        # Lone surrogates (undecodable bytes of a header or path): Go writes U+FFFD.
        data = orjson.dumps(_valid_utf8(doc))
    return _go_escape(data)


def _valid_utf8(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    if isinstance(value, dict):
        return {_valid_utf8(k): _valid_utf8(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_valid_utf8(v) for v in value]
    return value


def _go_escape(data: bytes) -> bytes:
    """encoding/json's HTML-safe escaping; these bytes only occur inside JSON strings."""
    for raw, escaped in _GO_HTML_ESCAPES:
        if raw in data:
            data = data.replace(raw, escaped)
    return data


def event_list_json(events: Sequence[Event]) -> bytes:
    """An audit.k8s.io/v1 EventList (the webhook's request body)."""
    items = b",".join(event.json for event in events)
    return (
        b'{"kind":"EventList","apiVersion":"'
        + API_VERSION.encode()
        + b'","metadata":{},"items":['
        + items
        + b"]}"
    )


_last_second: list[tuple[int, str]] = [(-1, "")]


def micro_time(ns: int) -> str:
    """metav1.MicroTime as JSON: UTC, six fractional digits."""
    seconds, rest = divmod(ns, 1_000_000_000)
    cached_seconds, text = _last_second[0]
    if cached_seconds != seconds:  # most events share their second with the one before
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        _last_second[0] = (seconds, text)
    return f"{text}.{rest // 1000:06d}Z"


def _rfc3339_nano_local(ns: int) -> str:
    """time.RFC3339Nano of a local time.Time: trailing zeros of the fraction dropped."""
    seconds, rest = divmod(ns, 1_000_000_000)
    local = time.localtime(seconds)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", local)
    fraction = f"{rest:09d}".rstrip("0")
    if fraction:
        text += "." + fraction
    offset = local.tm_gmtoff or 0
    if offset == 0:
        return text + "Z"
    sign = "+" if offset > 0 else "-"
    hours, minutes = divmod(abs(offset) // 60, 60)
    return f"{text}{sign}{hours:02d}:{minutes:02d}"


def legacy_line(event: Event) -> str:
    """audit.EventString: the `--audit-log-format=legacy` line (without the newline)."""
    username = groups = "<none>"
    if event.user is not None and event.user.name:
        username = event.user.name
        if event.user.groups:
            groups = ",".join(go_quote(g) for g in event.user.groups)
    as_user, as_groups = "<self>", "<lookup>"
    if event.impersonated_user is not None:
        as_user = event.impersonated_user.name
        if event.impersonated_user.groups:
            as_groups = ",".join(go_quote(g) for g in event.impersonated_user.groups)
    namespace = "<none>"
    if event.object_ref is not None and event.object_ref.namespace:
        namespace = event.object_ref.namespace
    response = "<deferred>"
    if event.response_status is not None:
        response = str(event.response_status.get("code", 0))
    ip = event.source_ips[0] if event.source_ips else "<unknown>"
    q = go_quote
    return (
        f"{_rfc3339_nano_local(event.request_received_ns)} AUDIT: id={q(event.audit_id)} "
        f"stage={q(event.stage.value)} ip={q(ip)} method={q(event.verb)} user={q(username)} "
        f"groups={q(groups)} as={q(as_user)} asgroups={q(as_groups)} "
        f"user-agent={q(event.user_agent)} namespace={q(namespace)} "
        f'uri={q(event.request_uri)} response="{response}"'
    )


def truncate_user_agent(user_agent: str) -> str:
    """maybeTruncateUserAgent: at most 1024 bytes, then "...TRUNCATED"."""
    if len(user_agent) <= _MAX_USER_AGENT // 4:
        return user_agent  # cannot exceed 1024 bytes
    raw = user_agent.encode("utf-8", "surrogateescape")
    if len(raw) <= _MAX_USER_AGENT:
        return user_agent
    return raw[:_MAX_USER_AGENT].decode("utf-8", "replace") + "...TRUNCATED"


def _parse_ip(text: str) -> str | None:
    """netutils.ParseIPSloppy then IP.String(): IPv4 fields may have leading zeros (read as
    decimal); IPv4-mapped IPv6 prints as IPv4; zones are not IPs."""
    if not text or "%" in text:
        return None
    if ":" not in text:
        fields = text.split(".")
        if len(fields) != 4 or not all(f.isascii() and f.isdigit() for f in fields):
            return None
        octets = [int(f) for f in fields]
        return ".".join(map(str, octets)) if all(o <= 255 for o in octets) else None
    try:
        address = ipaddress.IPv6Address(text)
    except ValueError:
        return None
    mapped = address.ipv4_mapped
    return str(mapped) if mapped is not None else str(address)


def source_ips(
    forwarded_for: str | None, real_ip: str | None, remote: str | None
) -> tuple[str, ...]:
    """utilnet.SourceIPs: the X-Forwarded-For chain, X-Real-Ip unless already in it, then the
    connection's address unless it repeats the last one; invalid entries are skipped."""
    ips: list[str] = []
    if forwarded_for:
        for part in forwarded_for.split(","):
            ip = _parse_ip(part.strip())
            if ip is not None:
                ips.append(ip)
    if real_ip:
        ip = _parse_ip(real_ip)
        if ip is not None and ip not in ips:
            ips.append(ip)
    remote_ip = _parse_ip(remote) if remote else None
    if remote_ip is not None and (not ips or ips[-1] != remote_ip):
        ips.append(remote_ip)
    return tuple(ips)


def response_status(code: int, body: Mapping[str, Any] | None) -> dict[str, Any]:
    """The event's responseStatus: a Status response's status, message, reason and details
    (LogResponseObject's bounded copy), and the code sent (the response writer's)."""
    status: dict[str, Any] = {"metadata": {}}
    if body is not None and body.get("kind") == "Status":
        for key in ("status", "message", "reason"):
            value = body.get(key)
            if isinstance(value, str) and value:
                status[key] = value
        if body.get("details") is not None:
            status["details"] = body["details"]
    status["code"] = code
    return status
