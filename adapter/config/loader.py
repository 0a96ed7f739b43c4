"""Strict decoding of a config file into `AdapterConfig`.

The Go adapter uses yaml.v2's `UnmarshalStrict`: unknown keys and duplicate keys are errors,
and any scalar may fill a string field (its text is used, so `as: 123` is the string "123").
We compose the YAML node tree with libyaml and decode it ourselves, which keeps line numbers
for every error and lets us report all errors of a file at once instead of the first one.
JSON files load through the same path, as they do in Go (JSON is YAML).

Like yaml.v2's `Unmarshal`, only the first document of a multi-document file is read: the
parser stops at that document's end, so what follows is never parsed (not even checked for
syntax). Content there is reported as a warning, since it was probably meant to be used.
"""

import difflib
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from yaml._yaml import CParser
from yaml.composer import Composer
from yaml.events import Event
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

from adapter.config.errors import IssueList
from adapter.config.schema import (
    AdapterConfig,
    DiscoveryRule,
    GroupResourceRef,
    LabelValueReplacement,
    NameMapping,
    RegexFilter,
    ResourceMapping,
    ResourceRule,
    ResourceRules,
)
from adapter.promql.duration import DurationError, parse_prometheus_duration

__all__ = ["decode_config", "parse_config_text", "read_config_file", "read_first_document"]

T = TypeVar("T")
Decoder = Callable[[Node, str, IssueList], T]

_NULL = "tag:yaml.org,2002:null"
_BOOL = "tag:yaml.org,2002:bool"
_MERGE = "tag:yaml.org,2002:merge"
_YAML_BOOLS = {
    "y": True, "yes": True, "true": True, "on": True,
    "n": False, "no": False, "false": False, "off": False,
}  # fmt: skip


def _line(node: Node) -> int | None:
    mark = getattr(node, "start_mark", None)
    return None if mark is None else int(mark.line) + 1


def _kind(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    return f"the scalar {node.value!r}"


def _is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == _NULL


def _decode_str(node: Node, path: str, issues: IssueList) -> str:
    if _is_null(node):
        return ""
    if isinstance(node, ScalarNode):
        return str(node.value)
    issues.add(path, f"expected a string, got {_kind(node)}", _line(node))
    return ""


def _decode_optional_bool(node: Node, path: str, issues: IssueList) -> bool | None:
    if _is_null(node):
        return None
    if isinstance(node, ScalarNode) and node.tag == _BOOL:
        return _YAML_BOOLS[str(node.value).lower()]
    issues.add(path, f"expected true or false, got {_kind(node)}", _line(node))
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
        if _is_null(node):
            return ()
        if not isinstance(node, SequenceNode):
            issues.add(path, f"expected a list, got {_kind(node)}", _line(node))
            return ()
        items = []
        for i, child in enumerate(node.value):
            child_path = f"{path}[{i}]"
            _record_line(issues, child_path, child)
            items.append(item(child, child_path, issues))
        return tuple(items)

    return decode


def _mapping_items(node: Node, path: str, issues: IssueList) -> list[tuple[str, Node, Node]]:
    """The (key, key node, value node) pairs of a mapping, with merges applied and
    duplicate keys reported; an empty list for null or a wrong node kind."""
    if _is_null(node):
        return []
    if not isinstance(node, MappingNode):
        issues.add(path, f"expected a mapping, got {_kind(node)}", _line(node))
        return []
    explicit: dict[str, tuple[Node, Node]] = {}
    merged: dict[str, tuple[Node, Node]] = {}
    for key_node, value_node in node.value:
        if key_node.tag == _MERGE:
            sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
            for source in sources:
                for key, k_node, v_node in _mapping_items(source, path, issues):
                    merged.setdefault(key, (k_node, v_node))
            continue
        key = _decode_str(key_node, path, issues)
        if key in explicit:
            first = _line(explicit[key][0])
            at = f" (first set at line {first})" if first is not None else ""
            issues.add(_join(path, key), f"duplicate key {key!r}{at}", _line(key_node))
            continue
        explicit[key] = (key_node, value_node)
    merged.update(explicit)  # explicit keys override merged ones, as YAML merge keys specify
    return [(key, k_node, v_node) for key, (k_node, v_node) in merged.items()]


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
        },
    )
    return DiscoveryRule(
        series_query=v.get("seriesQuery", ""),
        series_filters=v.get("seriesFilters", ()),
        resources=v.get("resources", ResourceMapping()),
        name=v.get("name", NameMapping()),
        metrics_query=v.get("metricsQuery", ""),
        label_value_replacements=v.get("labelValueReplacements", ()),
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
        },
    )
    return ResourceRules(
        cpu=v.get("cpu", ResourceRule()),
        memory=v.get("memory", ResourceRule()),
        window_seconds=v.get("window", 0.0),
    )


def decode_config(root: Node | None, issues: IssueList) -> AdapterConfig:
    """Decode a composed YAML document; problems are appended to `issues`."""
    if root is None:
        return AdapterConfig()
    v = _decode_fields(
        root,
        "",
        issues,
        {
            "rules": _decode_list(_decode_discovery_rule),
            "externalRules": _decode_list(_decode_discovery_rule),
            "resourceRules": _decode_resource_rules,
        },
    )
    has_resource_rules = "resourceRules" in v
    return AdapterConfig(
        rules=v.get("rules", ()),
        external_rules=v.get("externalRules", ()),
        resource_rules=v["resourceRules"] if has_resource_rules else None,
    )


class _FirstDocumentLoader(Composer, CParser, Resolver):
    """libyaml's events (CParser) composed into nodes by PyYAML's composer, which lets us
    see where the first document ends; CParser's own composer does not tell."""

    def __init__(self, text: str) -> None:
        CParser.__init__(self, text)
        Composer.__init__(self)
        Resolver.__init__(self)
        # Where the last event read ends: (line, column), both 0-based.
        self.consumed_to: tuple[int, int] | None = None

    def get_event(self) -> Event | None:
        event = super().get_event()
        mark = None if event is None else event.end_mark
        if mark is not None:
            self.consumed_to = (mark.line, mark.column)
        return event


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
        loader.get_event()  # the stream start
        root = loader.get_node()
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
    except yaml.YAMLError as exc:
        issues.add("", f"invalid YAML: {exc}")
        return AdapterConfig()
    return decode_config(root, issues)


def read_config_file(path: str | Path, issues: IssueList) -> AdapterConfig:
    """Read and decode a config file; problems are appended to `issues`."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        issues.add("", f"cannot read file: {reason}")
        return AdapterConfig()
    return parse_config_text(text, issues)
