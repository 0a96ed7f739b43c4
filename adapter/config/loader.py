"""Strict decoding of a config file into `AdapterConfig`.

The Go adapter uses yaml.v2's `UnmarshalStrict`: unknown keys and duplicate keys are errors,
and any scalar may fill a string field (its text is used, so `as: 123` is the string "123").
We compose the YAML node tree with libyaml and decode it ourselves, which keeps line numbers
for every error and lets us report all errors of a file at once instead of the first one.
JSON files load through the same path, as they do in Go (JSON is YAML).

Like yaml.v2's `Unmarshal`, only the first document of a multi-document file is read: the
parser stops at that document's end, so what follows is never parsed (not even checked for
syntax). Content there is reported as a warning, since it was probably meant to be used.

Aliases are bounded as yaml.v2 bounds them (decode.go's alias ratio: "document contains
excessive aliasing"), so that a few hundred bytes of aliases and merge keys cannot make
millions of rules. The node tree is composed without recursion, and merges are expanded
without it, so deep nesting and long merge chains cost no Python stack.
"""

import difflib
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

import yaml
from yaml._yaml import CParser
from yaml.composer import ComposerError
from yaml.error import Mark
from yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    Event,
    MappingStartEvent,
    ScalarEvent,
    SequenceStartEvent,
    StreamEndEvent,
)
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.reader import ReaderError
from yaml.resolver import Resolver
from yarl import URL

from adapter.config.errors import IssueList
from adapter.config.schema import (
    AdapterConfig,
    DiscoveryRule,
    GroupResourceRef,
    LabelValueReplacement,
    NameMapping,
    PrometheusServer,
    RegexFilter,
    ResourceMapping,
    ResourceRule,
    ResourceRules,
)
from adapter.golang.duration import DurationError, parse_go_duration, parse_prometheus_duration
from adapter.prometheus.config import (
    DEFAULT_SERVER,
    PrometheusConfigError,
    canonical_header_key,
    check_header,
)
from adapter.prometheus.transport import display_url

__all__ = [
    "DEFAULT_SERVER",
    "decode_config",
    "parse_config_text",
    "read_config_file",
    "read_first_document",
]

T = TypeVar("T")
Decoder = Callable[[Node, str, IssueList], T]

_NULL = "tag:yaml.org,2002:null"
_BOOL = "tag:yaml.org,2002:bool"
_MERGE = "tag:yaml.org,2002:merge"
_TAG_PREFIX = "tag:yaml.org,2002:"
# yaml.v2's booleans (resolve.go), with their case: `True` is one, `tRuE` is not.
_GO_BOOLS = {
    **dict.fromkeys(
        ("y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"), True
    ),
    **dict.fromkeys(("n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off"), False),
    "OFF": False,
}


class _GoResolver(Resolver):
    """PyYAML's YAML 1.1 resolver, plus the plain `y`, `Y`, `n` and `N` that yaml.v2 also
    reads as booleans."""

    def resolve_tag(self, kind: type[Node], value: str | None, implicit: Any) -> str:
        return str(self.resolve(kind, value, implicit))  # type: ignore[no-untyped-call]


_GoResolver.add_implicit_resolver(_BOOL, re.compile(r"^(?:y|Y|n|N)$"), list("yYnN"))


class AliasNode(Node):
    """An alias (`*name`) where it is used; `value` is the node that the anchor names.

    Aliases stay in the tree, as they do in yaml.v2, so that their expansion can be counted."""

    id = "alias"

    def __init__(self, anchor: str, target: Node, start_mark: Mark, end_mark: Mark) -> None:
        super().__init__(target.tag, target, start_mark, end_mark)
        self.anchor = anchor


def _target(node: Node) -> Node:
    """The node an alias names; any other node itself."""
    return node.value if isinstance(node, AliasNode) else node


def _line(node: Node) -> int | None:
    mark = getattr(node, "start_mark", None)
    return None if mark is None else int(mark.line) + 1


def _kind(node: Node) -> str:
    node = _target(node)
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    return f"the scalar {node.value!r}"


def _is_null(node: Node) -> bool:
    node = _target(node)
    return isinstance(node, ScalarNode) and node.tag == _NULL


def _is_merge_key(node: Node) -> bool:
    # Not through an alias: yaml.v2 reads `*x: ...` as a key named by x's text, even `<<`.
    return isinstance(node, ScalarNode) and node.tag == _MERGE


def _decode_str(node: Node, path: str, issues: IssueList) -> str:
    scalar = _target(node)
    if _is_null(scalar):
        return ""
    if isinstance(scalar, ScalarNode):
        return str(scalar.value)
    issues.add(path, f"expected a string, got {_kind(scalar)}", _line(node))
    return ""


def _decode_optional_bool(node: Node, path: str, issues: IssueList) -> bool | None:
    scalar = _target(node)
    if _is_null(scalar):
        return None
    if isinstance(scalar, ScalarNode) and scalar.tag == _BOOL:
        value = _GO_BOOLS.get(str(scalar.value))
        if value is None:
            # Only an explicit `!!bool` gets here with other text; yaml.v2 refuses it so.
            plain_tag = _GoResolver().resolve_tag(ScalarNode, scalar.value, (True, False))
            short_tag = plain_tag.replace(_TAG_PREFIX, "!!", 1)
            if short_tag == "!!timestamp":  # yaml.v2 tries timestamps only on untagged text
                short_tag = "!!str"
            issues.add(path, f"cannot decode {short_tag} `{scalar.value}` as a !!bool", _line(node))
        return value
    issues.add(path, f"expected true or false, got {_kind(scalar)}", _line(node))
    return None


def _decode_duration(node: Node, path: str, issues: IssueList) -> float:
    text = _decode_str(node, path, issues)
    if not text:
        return 0.0
    try:
        return parse_prometheus_duration(text)
    except DurationError as exc:
        issues.add(path, str(exc), _line(node))
        return 0.0


def _decode_list(item: Decoder[T]) -> Decoder[tuple[T, ...]]:
    def decode(node: Node, path: str, issues: IssueList) -> tuple[T, ...]:
        sequence = _target(node)
        if _is_null(sequence):
            return ()
        if not isinstance(sequence, SequenceNode):
            issues.add(path, f"expected a list, got {_kind(sequence)}", _line(node))
            return ()
        items = []
        for i, child in enumerate(sequence.value):
            child_path = f"{path}[{i}]"
            _record_line(issues, child_path, child)
            items.append(item(child, child_path, issues))
        return tuple(items)

    return decode


@dataclass(slots=True)
class _MergeFrame:
    """A mapping whose items `_mapping_items` is collecting, with its merges in progress."""

    mapping: MappingNode
    pairs: Iterator[tuple[Node, Node]]
    sources: list[Node] = field(default_factory=list)  # of the current `<<`, the next last
    explicit: dict[str, tuple[Node, Node]] = field(default_factory=dict)
    merged: dict[str, tuple[Node, Node]] = field(default_factory=dict)


def _mapping_items(node: Node, path: str, issues: IssueList) -> list[tuple[str, Node, Node]]:
    """The (key, key node, value node) pairs of a mapping, with merges applied and
    duplicate keys reported; an empty list for null or a wrong node kind.

    Explicit keys win over merged ones, and earlier merged mappings over later ones, as YAML
    merge keys specify. Merged mappings are expanded on a stack of our own, so a long chain
    of merges costs no Python stack."""
    mapping = _target(node)
    if _is_null(mapping):
        return []
    if not isinstance(mapping, MappingNode):
        issues.add(path, f"expected a mapping, got {_kind(mapping)}", _line(node))
        return []
    stack = [_MergeFrame(mapping, iter(mapping.value))]
    on_stack = {id(mapping)}
    finished: list[tuple[str, tuple[Node, Node]]] = []
    while True:
        frame = stack[-1]
        for key, pair in finished:  # the items of a merged mapping just collected
            frame.merged.setdefault(key, pair)
        finished = []
        if frame.sources:
            source = frame.sources.pop()
            merged_mapping = _target(source)
            if _is_null(merged_mapping):
                continue
            if not isinstance(merged_mapping, MappingNode):
                issues.add(path, f"expected a mapping, got {_kind(source)}", _line(source))
                continue
            # Only through an alias can a mapping merge itself (_aliasing_problem says so first).
            if isinstance(source, AliasNode) and id(merged_mapping) in on_stack:
                reason = f"anchor '{source.anchor}' value contains itself"
                issues.add(path, reason, _line(source))
                continue
            stack.append(_MergeFrame(merged_mapping, iter(merged_mapping.value)))
            on_stack.add(id(merged_mapping))
            continue
        next_pair = next(frame.pairs, None)
        if next_pair is None:
            stack.pop()
            on_stack.discard(id(frame.mapping))
            frame.merged.update(frame.explicit)
            if not stack:
                return [(key, k_node, v_node) for key, (k_node, v_node) in frame.merged.items()]
            finished = list(frame.merged.items())
            continue
        key_node, value_node = next_pair
        if _is_merge_key(key_node):
            sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
            frame.sources = list(reversed(sources))
            continue
        if not isinstance(_target(key_node), ScalarNode):
            # yaml.v2 skips the value of a key it cannot read as a string.
            issues.add(path, f"expected a string, got {_kind(key_node)}", _line(key_node))
            continue
        key = _decode_str(key_node, path, issues)
        if key in frame.explicit:
            first = _line(frame.explicit[key][0])
            at = f" (first set at line {first})" if first is not None else ""
            issues.add(_join(path, key), f"duplicate key {key!r}{at}", _line(key_node))
            continue
        frame.explicit[key] = (key_node, value_node)


def _record_line(issues: IssueList, path: str, node: Node) -> None:
    line = _line(node)
    if line is not None:
        issues.lines.setdefault(path, line)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _decode_fields(
    node: Node, path: str, issues: IssueList, fields: dict[str, Decoder[Any]]
) -> dict[str, Any]:
    """Decode a mapping into {yaml key: value} for known keys; unknown keys are errors."""
    values: dict[str, Any] = {}
    for key, key_node, value_node in _mapping_items(node, path, issues):
        decoder = fields.get(key)
        if decoder is None:
            hint = difflib.get_close_matches(key, fields, n=1)
            suggestion = f"did you mean {hint[0]!r}? " if hint else ""
            allowed = ", ".join(fields)
            issues.add(
                _join(path, key),
                f"unknown field {key!r} ({suggestion}allowed here: {allowed})",
                _line(key_node),
            )
            continue
        _record_line(issues, _join(path, key), value_node)
        values[key] = decoder(value_node, _join(path, key), issues)
    return values


def _decode_group_resource(node: Node, path: str, issues: IssueList) -> GroupResourceRef:
    v = _decode_fields(node, path, issues, {"group": _decode_str, "resource": _decode_str})
    if not v.get("resource"):
        issues.add(path, "resource is required", _line(node))
    return GroupResourceRef(resource=v.get("resource", ""), group=v.get("group", ""))


def _decode_overrides(node: Node, path: str, issues: IssueList) -> dict[str, GroupResourceRef]:
    overrides = {}
    for key, _, value in _mapping_items(node, path, issues):
        _record_line(issues, _join(path, key), value)
        overrides[key] = _decode_group_resource(value, _join(path, key), issues)
    return overrides


def _decode_resource_mapping(node: Node, path: str, issues: IssueList) -> ResourceMapping:
    v = _decode_fields(
        node,
        path,
        issues,
        {
            "template": _decode_str,
            "overrides": _decode_overrides,
            "namespaced": _decode_optional_bool,
        },
    )
    return ResourceMapping(
        template=v.get("template", ""),
        overrides=v.get("overrides", {}),
        namespaced=v.get("namespaced"),
    )


def _decode_regex_filter(node: Node, path: str, issues: IssueList) -> RegexFilter:
    v = _decode_fields(node, path, issues, {"is": _decode_str, "isNot": _decode_str})
    return RegexFilter(is_=v.get("is", ""), is_not=v.get("isNot", ""))


def _decode_name(node: Node, path: str, issues: IssueList) -> NameMapping:
    v = _decode_fields(node, path, issues, {"matches": _decode_str, "as": _decode_str})
    return NameMapping(matches=v.get("matches", ""), as_=v.get("as", ""))


def _decode_replacement(node: Node, path: str, issues: IssueList) -> LabelValueReplacement:
    v = _decode_fields(node, path, issues, {"find": _decode_str, "replace": _decode_str})
    return LabelValueReplacement(find=v.get("find", ""), replace=v.get("replace", ""))


def _decode_discovery_rule(node: Node, path: str, issues: IssueList) -> DiscoveryRule:
    v = _decode_fields(
        node,
        path,
        issues,
        {
            "seriesQuery": _decode_str,
            "seriesFilters": _decode_list(_decode_regex_filter),
            "resources": _decode_resource_mapping,
            "name": _decode_name,
            "metricsQuery": _decode_str,
            "labelValueReplacements": _decode_list(_decode_replacement),
            "prometheusServer": _decode_str,
        },
    )
    return DiscoveryRule(
        series_query=v.get("seriesQuery", ""),
        series_filters=v.get("seriesFilters", ()),
        resources=v.get("resources", ResourceMapping()),
        name=v.get("name", NameMapping()),
        metrics_query=v.get("metricsQuery", ""),
        label_value_replacements=v.get("labelValueReplacements", ()),
        prometheus_server=v.get("prometheusServer", ""),
    )


def _decode_resource_rule(node: Node, path: str, issues: IssueList) -> ResourceRule:
    v = _decode_fields(
        node,
        path,
        issues,
        {
            "containerQuery": _decode_str,
            "nodeQuery": _decode_str,
            "resources": _decode_resource_mapping,
            "containerLabel": _decode_str,
        },
    )
    return ResourceRule(
        container_query=v.get("containerQuery", ""),
        node_query=v.get("nodeQuery", ""),
        resources=v.get("resources", ResourceMapping()),
        container_label=v.get("containerLabel", ""),
    )


def _decode_resource_rules(node: Node, path: str, issues: IssueList) -> ResourceRules:
    v = _decode_fields(
        node,
        path,
        issues,
        {
            "cpu": _decode_resource_rule,
            "memory": _decode_resource_rule,
            "window": _decode_duration,
            "prometheusServer": _decode_str,
        },
    )
    return ResourceRules(
        cpu=v.get("cpu", ResourceRule()),
        memory=v.get("memory", ResourceRule()),
        window_seconds=v.get("window", 0.0),
        prometheus_server=v.get("prometheusServer", ""),
    )


# --- prometheusServers (not in the Go adapter) ----------------------------------------------

_SERVER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
_SERVER_FIELDS = "prometheusServers"


def _decode_headers(node: Node, path: str, issues: IssueList) -> tuple[tuple[str, str], ...]:
    """A mapping of header names to values, checked as `--prometheus-header` is (names are
    canonicalised; a repeated name is an error). Values are never quoted in errors."""
    headers: dict[str, tuple[str, str]] = {}  # by lower-case name: (canonical name, value)
    for key, key_node, value_node in _mapping_items(node, path, issues):
        where = _join(path, key)
        _record_line(issues, where, value_node)
        value = _decode_str(value_node, where, issues)
        try:
            check_header(key, value, what="header")
        except PrometheusConfigError as exc:
            issues.add(where, str(exc), _line(key_node))
            continue
        canonical = canonical_header_key(key)
        if canonical.lower() in headers:
            issues.add(where, f"the header {canonical} is set twice", _line(key_node))
            continue
        headers[canonical.lower()] = (canonical, value.strip(" \t"))
    return tuple(headers.values())


def _decode_go_duration(node: Node, path: str, issues: IssueList) -> float | None:
    text = _decode_str(node, path, issues)
    if not text:
        return None
    try:
        seconds = parse_go_duration(text)
    except DurationError as exc:
        issues.add(path, str(exc), _line(node))
        return None
    if seconds < 0.001:
        issues.add(path, f"{text!r} is too short: a timeout must be at least 1ms", _line(node))
        return None
    return seconds


def _check_server_url(text: str, path: str, issues: IssueList) -> None:
    try:
        url = URL(text)
    except (ValueError, TypeError) as exc:
        issues.add(path, f"is not a URL: {exc}")
        return
    if url.scheme not in ("http", "https") or not url.host:
        shown = display_url(url) if url.is_absolute() else "the URL"
        issues.add(path, f"{shown} needs the scheme http:// or https:// and a host")


def _decode_server(node: Node, path: str, issues: IssueList) -> PrometheusServer:
    v = _decode_fields(
        node,
        path,
        issues,
        {
            "name": _decode_str,
            "url": _decode_str,
            "headers": _decode_headers,
            "tokenFile": _decode_str,
            "caFile": _decode_str,
            "clientCertFile": _decode_str,
            "clientKeyFile": _decode_str,
            "verb": _decode_str,
            "timeout": _decode_go_duration,
        },
    )
    name, url, verb = v.get("name", ""), v.get("url", ""), v.get("verb", "")
    if not name:
        issues.add(path, "name is required", _line(node))
    elif name == DEFAULT_SERVER:
        issues.add(
            _join(path, "name"),
            f"{DEFAULT_SERVER!r} is the name of the command-line backend (--prometheus-url); "
            "choose another",
        )
    elif not _SERVER_NAME.fullmatch(name):
        issues.add(
            _join(path, "name"),
            f"{name!r} is not a valid name: up to 63 letters, digits, '-', '_' and '.', "
            "starting with a letter or digit",
        )
    if not url:
        issues.add(path, "url is required", _line(node))
    else:
        _check_server_url(url, _join(path, "url"), issues)
    if verb and verb not in ("GET", "POST"):
        issues.add(
            _join(path, "verb"),
            f'unsupported Prometheus HTTP verb "{verb}"; supported verbs: "GET" and "POST"',
        )
    return PrometheusServer(
        name=name,
        url=url,
        headers=v.get("headers", ()),
        token_file=v.get("tokenFile", ""),
        ca_file=v.get("caFile", ""),
        client_cert_file=v.get("clientCertFile", ""),
        client_key_file=v.get("clientKeyFile", ""),
        verb=verb,
        timeout_seconds=v.get("timeout"),
        line=_line(node),
    )


def _check_server_references(config: AdapterConfig, issues: IssueList) -> None:
    """Every `prometheusServer` names an entry (or the command line's); names are unique;
    an entry no rule names is a warning."""
    defined: dict[str, int] = {}
    for index, server in enumerate(config.prometheus_servers):
        if not server.name or server.name == DEFAULT_SERVER:
            continue  # reported by _decode_server
        if server.name in defined:
            first = issues.line_of(f"{_SERVER_FIELDS}[{defined[server.name]}]")
            at = f" (first defined at line {first})" if first is not None else ""
            issues.add(f"{_SERVER_FIELDS}[{index}].name", f"duplicate name {server.name!r}{at}")
        else:
            defined[server.name] = index
    used: set[str] = set()
    references = [
        (f"{kind}[{i}].prometheusServer", rule.prometheus_server)
        for kind, rules in (("rules", config.rules), ("externalRules", config.external_rules))
        for i, rule in enumerate(rules)
    ]
    if config.resource_rules is not None:
        references.append(
            ("resourceRules.prometheusServer", config.resource_rules.prometheus_server)
        )
    for path, name in references:
        if not name or name == DEFAULT_SERVER:
            continue
        used.add(name)
        if name not in defined:
            known = ", ".join(repr(n) for n in defined) or "none"
            hint = difflib.get_close_matches(name, defined, n=1)
            suggestion = f"did you mean {hint[0]!r}? " if hint else ""
            issues.add(
                path,
                f"unknown Prometheus server {name!r} ({suggestion}defined in prometheusServers: "
                f"{known}; leave it out for the command-line backend)",
            )
    for name, index in defined.items():
        if name not in used:
            issues.warn(
                f"{_SERVER_FIELDS}[{index}]",
                f"no rule names the Prometheus server {name!r}, so it is never asked",
            )


@dataclass(frozen=True, eq=False, slots=True)
class _GoType:
    """A type of the Go adapter's config struct (pkg/config/config.go), as far as the steps
    of yaml.v2's decoding depend on it: the fields of a struct, what a list or a map holds."""

    kind: str  # "struct", "map", "list", "string", "bool" or "duration"
    fields: Mapping[str, "_GoType"] = field(default_factory=dict)
    elem: "_GoType | None" = None


def _go_struct(**fields: _GoType) -> _GoType:
    return _GoType("struct", fields)


def _go_list(elem: _GoType) -> _GoType:
    return _GoType("list", elem=elem)


_GO_STRING = _GoType("string")
# The same fields as the decoders below.
_GO_RESOURCE_MAPPING = _go_struct(
    template=_GO_STRING,
    overrides=_GoType("map", elem=_go_struct(group=_GO_STRING, resource=_GO_STRING)),
    namespaced=_GoType("bool"),
)
_GO_DISCOVERY_RULE = _go_struct(
    seriesQuery=_GO_STRING,
    seriesFilters=_go_list(_go_struct(**{"is": _GO_STRING, "isNot": _GO_STRING})),
    resources=_GO_RESOURCE_MAPPING,
    name=_go_struct(matches=_GO_STRING, **{"as": _GO_STRING}),
    metricsQuery=_GO_STRING,
    labelValueReplacements=_go_list(_go_struct(find=_GO_STRING, replace=_GO_STRING)),
    prometheusServer=_GO_STRING,  # ours: Go rejects it, but it is decoded here
)
_GO_RESOURCE_RULE = _go_struct(
    containerQuery=_GO_STRING,
    nodeQuery=_GO_STRING,
    resources=_GO_RESOURCE_MAPPING,
    containerLabel=_GO_STRING,
)
_GO_CONFIG = _go_struct(
    rules=_go_list(_GO_DISCOVERY_RULE),
    externalRules=_go_list(_GO_DISCOVERY_RULE),
    # model.Duration decodes its node a second time, as a string (its UnmarshalYAML).
    resourceRules=_go_struct(
        cpu=_GO_RESOURCE_RULE,
        memory=_GO_RESOURCE_RULE,
        window=_GoType("duration"),
        prometheusServer=_GO_STRING,
    ),
    # Ours (the Go adapter rejects it); walked as the fields decoded here, so that its
    # aliases count as the others do.
    prometheusServers=_go_list(
        _go_struct(
            name=_GO_STRING,
            url=_GO_STRING,
            headers=_GoType("map", elem=_GO_STRING),
            tokenFile=_GO_STRING,
            caFile=_GO_STRING,
            clientCertFile=_GO_STRING,
            clientKeyFile=_GO_STRING,
            verb=_GO_STRING,
            timeout=_GO_STRING,
        )
    ),
)

# yaml.v2's decode.go: how much of the decoding may be alias expansion, by decode count.
_ALIAS_RATIO_RANGE_LOW = 400_000
_ALIAS_RATIO_RANGE_HIGH = 4_000_000
_EXCESSIVE_ALIASING = "document contains excessive aliasing"

# The steps of `_aliasing_problem`'s walk.
_DECODE, _KEY, _MERGE_INTO, _LEAVE_ALIAS = range(4)


def _excessive_aliasing(decodes: int, aliased: int) -> bool:
    """yaml.v2's test, made at each step of decoding (decoder.unmarshal)."""
    if aliased <= 100 or decodes <= 1000:
        return False
    if decodes <= _ALIAS_RATIO_RANGE_LOW:
        allowed = 0.99
    elif decodes >= _ALIAS_RATIO_RANGE_HIGH:
        allowed = 0.10
    else:
        progress = (decodes - _ALIAS_RATIO_RANGE_LOW) / (
            _ALIAS_RATIO_RANGE_HIGH - _ALIAS_RATIO_RANGE_LOW
        )
        allowed = 0.99 - 0.89 * progress
    return aliased / decodes > allowed


def _aliasing_problem(root: Node) -> tuple[str, str, Node] | None:
    """Where yaml.v2 would stop decoding `root` into the Go adapter's config because of its
    aliases, as (path, reason, node), or None.

    This walks the document as yaml.v2's UnmarshalStrict does: one step per call of its
    decoder.unmarshal, in its order, not into unknown fields or values of the wrong kind;
    steps inside an alias's node count as alias expansion. It stops where yaml.v2 does:
    "document contains excessive aliasing" (reported at the outermost alias being expanded)
    or "anchor 'a' value contains itself". An alias's node decoded as a type once costs no
    walk the next time (its step count is kept): a node that an alias reaches again from
    inside itself fails on the first walk, and within one expansion the alias ratio only
    grows, so yaml.v2's verdict is the same. The walk is linear in the document's size."""
    decodes = 1  # the document node
    aliased = 0
    expanding: set[int] = set()  # the alias nodes being expanded, by id
    outermost: tuple[str, Node] = ("", root)  # the alias expanded outside any other
    steps_of: dict[tuple[int, int], int] = {}  # by (id(node), id(type)): decode steps
    # Steps to take, the next last: (_DECODE, node, type, path), (_KEY, key node, value node,
    # type, path, fields done), (_MERGE_INTO, merged node, type, path), (_LEAVE_ALIAS,
    # alias node, steps key, decodes at the start). Paths are None inside aliases.
    work: list[tuple[Any, ...]] = [(_DECODE, root, _GO_CONFIG, "")]
    while work:
        step = work.pop()
        op = step[0]
        if op == _LEAVE_ALIAS:
            _, alias, steps_key, decodes_at_start = step
            expanding.discard(id(alias))
            steps_of[steps_key] = decodes - decodes_at_start
            continue
        if op == _MERGE_INTO:
            _, merged, go_type, path = step
            # yaml.v2 merges a list of mappings last to first. A merge of something else is
            # an error the decoders report.
            for source in merged.value if isinstance(merged, SequenceNode) else [merged]:
                if isinstance(_target(source), MappingNode):
                    work.append((_DECODE, source, go_type, path))
            continue
        decodes += 1
        if expanding:
            aliased += 1
        if _excessive_aliasing(decodes, aliased):
            # Outside aliases, paths are known: a _DECODE's is step[3], a _KEY's step[4].
            at_path, at_node = outermost if expanding else (step[3 + (op == _KEY)], step[1])
            return at_path, _EXCESSIVE_ALIASING, at_node
        if op == _KEY:
            _, key_node, value_node, go_type, path, done = step
            if isinstance(key_node, AliasNode):  # one more step: the alias's node, as a string
                decodes += 1
                aliased += 1
                if _excessive_aliasing(decodes, aliased):
                    at_path, at_node = outermost if expanding else (path, key_node)
                    return at_path, _EXCESSIVE_ALIASING, at_node
                key_node = key_node.value
            if not isinstance(key_node, ScalarNode):
                continue
            key = "" if _is_null(key_node) else str(key_node.value)
            if go_type.kind == "map":
                value_type = go_type.elem
            else:
                value_type = go_type.fields.get(key)
                if value_type is None or key in done:
                    continue
                done.add(key)
            child_path = None if path is None else _join(path, key)
            work.append((_DECODE, value_node, value_type, child_path))
            continue
        _, node, go_type, path = step
        if isinstance(node, AliasNode):
            if id(node) in expanding:
                where = outermost[0] if path is None else path
                return where, f"anchor '{node.anchor}' value contains itself", node
            if not expanding:
                outermost = (path, node)
            steps_key = (id(node.value), id(go_type))
            known_steps = steps_of.get(steps_key)
            if known_steps is not None:
                decodes += known_steps
                aliased += known_steps
                if _excessive_aliasing(decodes, aliased):
                    return outermost[0], _EXCESSIVE_ALIASING, outermost[1]
                continue
            expanding.add(id(node))
            work.append((_LEAVE_ALIAS, node, steps_key, decodes))
            work.append((_DECODE, node.value, go_type, None))
            continue
        kind = go_type.kind
        if kind == "duration":
            if not _is_null(node):
                work.append((_DECODE, node, _GO_STRING, path))
        elif isinstance(node, MappingNode) and kind in ("struct", "map"):
            fields_done: set[str] = set()  # yaml.v2's doneFields, per mapping
            for key_node, value_node in reversed(node.value):
                if _is_merge_key(key_node):
                    work.append((_MERGE_INTO, value_node, go_type, path))
                else:
                    work.append((_KEY, key_node, value_node, go_type, path, fields_done))
        elif isinstance(node, SequenceNode) and kind == "list":
            for index in range(len(node.value) - 1, -1, -1):
                child_path = None if path is None else f"{path}[{index}]"
                work.append((_DECODE, node.value[index], go_type.elem, child_path))
    return None


def decode_config(root: Node | None, issues: IssueList) -> AdapterConfig:
    """Decode a composed YAML document; problems are appended to `issues`."""
    if root is None:
        return AdapterConfig()
    problem = _aliasing_problem(root)
    if problem is not None:
        path, reason, node = problem
        issues.add(path, reason, _line(node))
        return AdapterConfig()
    v = _decode_fields(
        root,
        "",
        issues,
        {
            "rules": _decode_list(_decode_discovery_rule),
            "externalRules": _decode_list(_decode_discovery_rule),
            "resourceRules": _decode_resource_rules,
            "prometheusServers": _decode_list(_decode_server),
        },
    )
    has_resource_rules = "resourceRules" in v
    config = AdapterConfig(
        rules=v.get("rules", ()),
        external_rules=v.get("externalRules", ()),
        resource_rules=v["resourceRules"] if has_resource_rules else None,
        prometheus_servers=v.get("prometheusServers", ()),
    )
    _check_server_references(config, issues)
    return config


@dataclass(slots=True)
class _OpenCollection:
    node: SequenceNode | MappingNode
    key: Node | None = None  # of a mapping: the key whose value comes next


class _FirstDocumentLoader(CParser, _GoResolver):
    """libyaml's events (CParser) composed into nodes as yaml.v2's parser does, which lets us
    see where the first document ends (CParser's own composer does not tell)."""

    def __init__(self, text: str) -> None:
        CParser.__init__(self, text)
        _GoResolver.__init__(self)
        # Where the last event read ends: (line, column), both 0-based.
        self.consumed_to: tuple[int, int] | None = None

    def get_event(self) -> Event | None:
        event = super().get_event()
        mark = None if event is None else event.end_mark
        if mark is not None:
            self.consumed_to = (mark.line, mark.column)
        return event

    def compose_first_document(self) -> Node | None:
        """The first document's node tree, None for a stream without documents.

        Built on a stack of our own, not by recursion, so nesting costs no Python stack
        (libyaml refuses nesting from 1000 levels; yaml.v2 from 10,000).
        As in yaml.v2, an anchor names its node from where the node starts (an alias inside
        it names it too), a later anchor of the same name replaces it, and aliases stay in
        the tree as AliasNode."""
        self.get_event()  # the stream start
        if self.check_event(StreamEndEvent):
            return None
        self.get_event()  # the document start
        anchors: dict[str, Node] = {}
        open_collections: list[_OpenCollection] = []
        while True:
            event = self.get_event()
            # libyaml's marks have the attributes of PyYAML's, which nodes are typed with.
            start_mark = cast(Mark, getattr(event, "start_mark", None))
            end_mark = cast(Mark, getattr(event, "end_mark", None))
            node: Node
            if isinstance(event, CollectionEndEvent):
                node = open_collections.pop().node
                node.end_mark = end_mark
            elif isinstance(event, AliasEvent):
                anchor = str(event.anchor)
                target = anchors.get(anchor)
                if target is None:
                    problem = f"unknown anchor '{anchor}' referenced"
                    raise ComposerError(problem=problem, problem_mark=start_mark)
                node = AliasNode(anchor, target, start_mark, end_mark)
            elif isinstance(event, ScalarEvent):
                tag = event.tag
                if tag is None or tag == "!":
                    tag = self.resolve_tag(ScalarNode, event.value, event.implicit)
                node = ScalarNode(tag, event.value, start_mark, end_mark, style=event.style)
                if event.anchor is not None:
                    anchors[event.anchor] = node
            elif isinstance(event, SequenceStartEvent | MappingStartEvent):
                node_type = SequenceNode if isinstance(event, SequenceStartEvent) else MappingNode
                tag = event.tag
                if tag is None or tag == "!":
                    tag = self.resolve_tag(node_type, None, event.implicit)
                collection = node_type(tag, [], start_mark, None, flow_style=event.flow_style)
                if event.anchor is not None:
                    anchors[event.anchor] = collection
                open_collections.append(_OpenCollection(collection))
                continue
            else:
                raise ComposerError(problem=f"unexpected {type(event).__name__}")
            if not open_collections:
                self.get_event()  # the document end
                return node
            parent = open_collections[-1]
            if isinstance(parent.node, SequenceNode):
                parent.node.value.append(node)
            elif parent.key is None:
                parent.key = node
            else:
                parent.node.value.append((parent.key, node))
                parent.key = None


# libyaml's line breaks, so that line numbers agree with its marks.
_LINE_BREAK = re.compile(r"\r\n|[\r\n\x85\u2028\u2029]")
_DOCUMENT_MARKER = re.compile(r"(---|\.\.\.)(?=\s|$)")


def _ignored_content_line(text: str, end: tuple[int, int]) -> int | None:
    """The 1-based line where content after the first document starts (the `---` opening the
    document that holds it), or None when only markers, comments and blank lines follow."""
    end_line, end_column = end
    lines = _LINE_BREAK.split(text)
    opened_at: int | None = None
    for index in range(end_line, len(lines)):
        line = lines[index][end_column:] if index == end_line else lines[index]
        rest = line.strip()
        marker = _DOCUMENT_MARKER.match(rest)
        if marker is not None:
            if marker.group(1) == "---":
                opened_at = index + 1
            rest = rest[marker.end() :].strip()
        if rest and not rest.startswith("#"):
            return opened_at if opened_at is not None else index + 1
    return None


def read_first_document(text: str, issues: IssueList) -> Node | None:
    """The first YAML document of `text` (None when there is none), as yaml.v2 reads it.

    Later documents are not parsed; if they hold content, a warning naming the line where it
    starts is added to the warnings of `issues`. Syntax errors of the first document raise
    yaml.YAMLError."""
    loader = _FirstDocumentLoader(text)
    try:
        root = loader.compose_first_document()
        end = loader.consumed_to
    finally:
        loader.dispose()
    if root is not None and end is not None:
        line = _ignored_content_line(text, end)
        if line is not None:
            issues.warn(
                "",
                "another YAML document starts here and is ignored: only the first document of "
                "the file is read, as in the Go adapter (yaml.v2)",
                line,
            )
    return root


def _line_after(text: str) -> int:
    """The 1-based line where what follows `text` is, counted as libyaml counts lines."""
    return len(_LINE_BREAK.findall(text)) + 1


def parse_config_text(text: str, issues: IssueList) -> AdapterConfig:
    """Parse YAML (or JSON) text; syntax errors are appended to `issues`."""
    try:
        root = read_first_document(text, issues)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = None if mark is None else mark.line + 1
        reason = " ".join(part for part in (exc.context, exc.problem) if part)
        issues.add("", f"invalid YAML: {reason}", line)
        return AdapterConfig()
    except ReaderError as exc:
        # libyaml gives a byte offset into the text as UTF-8.
        before = text.encode("utf-8")[: exc.position].decode("utf-8", errors="replace")
        character = exc.character if isinstance(exc.character, int) else ord(exc.character)
        issues.add(
            "",
            f"invalid YAML: unacceptable character #x{character:04x}: {exc.reason}",
            _line_after(before),
        )
        return AdapterConfig()
    except yaml.YAMLError as exc:
        issues.add("", f"invalid YAML: {exc}")
        return AdapterConfig()
    return decode_config(root, issues)


# yaml.v2 reads UTF-16 when the file starts with its byte-order mark, and UTF-8 otherwise.
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def read_config_file(path: str | Path, issues: IssueList) -> AdapterConfig:
    """Read and decode a config file; problems are appended to `issues`."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        issues.add("", f"cannot read file: {exc.strerror or exc}")
        return AdapterConfig()
    encoding = "utf-16" if data.startswith(_UTF16_BOMS) else "utf-8"
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        before = data[: exc.start].decode(encoding, errors="replace")
        issues.add("", f"cannot read file: {exc}", _line_after(before))
        return AdapterConfig()
    return parse_config_text(text, issues)
