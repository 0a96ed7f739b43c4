"""Port of k8s.io/apiserver `RequestInfoFactory.NewRequestInfo` (pkg/endpoints/request).

It decides whether a request addresses a resource (and which one, with which verb) or a plain
path; authorization is asked about exactly these attributes, so every detail matters.
"""

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["API_PREFIXES", "GROUPLESS_API_PREFIXES", "RequestInfo", "new_request_info"]

API_PREFIXES = frozenset({"api", "apis"})
GROUPLESS_API_PREFIXES = frozenset({"api"})
# Verbs that appear as a path segment: /apis/g/v/watch/...
_SPECIAL_VERBS = frozenset({"proxy", "watch"})
_SPECIAL_VERBS_NO_SUBRESOURCES = frozenset({"proxy"})
# Subresources of a namespace itself: /api/v1/namespaces/x/status is about namespace x.
_NAMESPACE_SUBRESOURCES = frozenset({"status", "finalize"})
_METHOD_VERBS = {
    "POST": "create",
    "GET": "get",
    "HEAD": "get",
    "PUT": "update",
    "PATCH": "patch",
    "DELETE": "delete",
}


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """What a request is about, as k8s authorization sees it."""

    is_resource_request: bool
    path: str
    verb: str
    api_prefix: str = ""
    api_group: str = ""
    api_version: str = ""
    namespace: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    parts: tuple[str, ...] = ()


def _split_path(path: str) -> list[str]:
    path = path.strip("/")
    return path.split("/") if path else []


def _query_bool(value: str) -> bool:
    # metav1 Convert_Slice_string_To_bool: only "0" and "false" (any case) are false.
    return not (value == "0" or value.lower() == "false")


def _is_valid_path_segment_name(name: str) -> bool:
    # apimachinery path.IsValidPathSegmentName
    return name not in (".", "..") and "/" not in name and "%" not in name


def _exact_name_from_field_selector(selector: str) -> tuple[bool, str | None]:
    """(parsed, name): a `metadata.name=x` / `==x` requirement of an AND field selector.

    A simplified port of fields.ParseSelector + RequiresExactMatch: terms are split on unescaped
    commas, values unescaped (`\\,`, `\\=`, `\\\\`); a malformed term makes `parsed` false."""
    terms: list[str] = []
    current: list[str] = []
    escaped = False
    for ch in selector:
        if escaped:
            current.append("\\" + ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == ",":
            terms.append("".join(current))
            current = []
        else:
            current.append(ch)
    if escaped:
        return False, None
    terms.append("".join(current))
    name: str | None = None
    for term in terms:
        if not term:
            continue
        for op in ("!=", "==", "="):
            index = _unescaped_find(term, op)
            if index >= 0:
                field, raw_value = term[:index], term[index + len(op) :]
                break
        else:
            return False, None
        value = _unescape_field_value(raw_value)
        if value is None:
            return False, None
        if field == "metadata.name" and op != "!=" and name is None:
            name = value
    return True, name


def _unescaped_find(term: str, op: str) -> int:
    i = 0
    while i < len(term):
        if term[i] == "\\":
            i += 2
            continue
        if term.startswith(op, i):
            return i
        i += 1
    return -1


def _unescape_field_value(value: str) -> str | None:
    out: list[str] = []
    i = 0
    while i < len(value):
        ch = value[i]
        if ch == "\\":
            if i + 1 >= len(value) or value[i + 1] not in "\\,=":
                return None
            out.append(value[i + 1])
            i += 2
            continue
        if ch in ",=":
            return None
        out.append(ch)
        i += 1
    return "".join(out)


def new_request_info(method: str, path: str, query: Mapping[str, str] | None = None) -> RequestInfo:
    """The RequestInfo of `method path?query` (query: first value of each parameter)."""
    query = query or {}
    non_resource = RequestInfo(is_resource_request=False, path=path, verb=method.lower())
    parts = _split_path(path)
    if len(parts) < 3 or parts[0] not in API_PREFIXES:
        return non_resource
    api_prefix = parts[0]
    parts = parts[1:]
    api_group = ""
    if api_prefix not in GROUPLESS_API_PREFIXES:
        # /apis/<group>/<version> (and shorter) is discovery, not a resource.
        if len(parts) < 3:
            return non_resource
        api_group = parts[0]
        parts = parts[1:]
    api_version = parts[0]
    parts = parts[1:]

    if parts[0] in _SPECIAL_VERBS:
        if len(parts) < 2:
            # Go returns an error here, which the RequestInfo filter turns into a 500; treating it
            # as a non-resource request instead still leaves the decision to the authorizer.
            return non_resource
        verb = parts[0]
        parts = parts[1:]
    else:
        verb = _METHOD_VERBS.get(method.upper(), "")

    namespace = ""
    if parts[0] == "namespaces" and len(parts) > 1:
        namespace = parts[1]
        if len(parts) > 2 and parts[2] not in _NAMESPACE_SUBRESOURCES:
            parts = parts[2:]

    resource = subresource = name = ""
    if len(parts) >= 3 and verb not in _SPECIAL_VERBS_NO_SUBRESOURCES:
        subresource = parts[2]
    if len(parts) >= 2:
        name = parts[1]
    if len(parts) >= 1:
        resource = parts[0]

    if not name and verb == "get":
        watch = query.get("watch")
        verb = "watch" if watch is not None and _query_bool(watch) else "list"
        field_selector = query.get("fieldSelector")
        if field_selector is not None:
            parsed, selected = _exact_name_from_field_selector(field_selector)
            if not parsed:
                # Go resets the options after a parse error, keeping only `watch`.
                pass
            elif selected is not None and _is_valid_path_segment_name(selected):
                name = selected
    if not name and verb == "delete":
        verb = "deletecollection"

    return RequestInfo(
        is_resource_request=True,
        path=path,
        verb=verb,
        api_prefix=api_prefix,
        api_group=api_group,
        api_version=api_version,
        namespace=namespace,
        resource=resource,
        subresource=subresource,
        name=name,
        parts=tuple(parts),
    )
