"""The audit policy: an `audit.k8s.io/v1` Policy file, loaded and validated as k8s.io/apiserver
does (pkg/audit/policy/reader.go, pkg/apis/audit/validation), and evaluated per request as
pkg/audit/policy/checker.go does: the first rule whose every field matches gives the level and
the stages to omit; no match means level None.
"""

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from adapter.audit.levels import Level, Stage
from adapter.auth.request_info import RequestInfo
from adapter.auth.user import UserInfo
from adapter.golang.quote import go_quote

__all__ = [
    "GroupResources",
    "Policy",
    "PolicyError",
    "PolicyRule",
    "RequestAuditConfig",
    "load_policy",
    "parse_policy",
]

log = logging.getLogger(__name__)

API_VERSION = "audit.k8s.io/v1"
_POLICY_FIELDS = frozenset(
    {"apiVersion", "kind", "metadata", "rules", "omitStages", "omitManagedFields"}
)
_RULE_FIELDS = frozenset(
    {
        "level",
        "users",
        "userGroups",
        "verbs",
        "resources",
        "namespaces",
        "nonResourceURLs",
        "omitStages",
        "omitManagedFields",
    }
)
_GROUP_RESOURCES_FIELDS = frozenset({"group", "resources", "resourceNames"})
_STAGE_NAMES = frozenset(stage.value for stage in Stage)
_LEVEL_NAMES = frozenset(level.value for level in Level)
_STAGES = ",".join(stage.value for stage in Stage)
_LEVELS = ", ".join(go_quote(level.value) for level in Level)
# apimachinery IsDNS1123Subdomain.
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_DNS1123_SUBDOMAIN_MESSAGE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)


class PolicyError(ValueError):
    """The policy file cannot be used; the message names the file and the failing field."""


@dataclass(frozen=True, slots=True)
class GroupResources:
    group: str = ""
    resources: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PolicyRule:
    level: Level
    users: frozenset[str] = frozenset()
    user_groups: frozenset[str] = frozenset()
    verbs: frozenset[str] = frozenset()
    resources: tuple[GroupResources, ...] = ()
    namespaces: frozenset[str] = frozenset()
    non_resource_urls: tuple[str, ...] = ()
    # Already united with the policy's omitStages, as NewPolicyRuleEvaluator does.
    omit_stages: frozenset[Stage] = frozenset()
    # Parsed for compatibility; our responses carry no managedFields to omit.
    omit_managed_fields: bool | None = None


@dataclass(frozen=True, slots=True)
class RequestAuditConfig:
    level: Level
    omit_stages: frozenset[Stage]


@dataclass(frozen=True, slots=True)
class Policy:
    rules: tuple[PolicyRule, ...]
    omit_stages: frozenset[Stage] = frozenset()
    omit_managed_fields: bool = False

    def evaluate(self, user: UserInfo | None, info: RequestInfo) -> RequestAuditConfig:
        """The first matching rule's level and omitted stages (user None: not authenticated)."""
        for rule in self.rules:
            if _rule_matches(rule, user, info):
                return RequestAuditConfig(rule.level, rule.omit_stages)
        return RequestAuditConfig(Level.NONE, self.omit_stages)


def _rule_matches(rule: PolicyRule, user: UserInfo | None, info: RequestInfo) -> bool:
    if rule.users and (user is None or user.name not in rule.users):
        return False
    if rule.user_groups and (user is None or not any(g in rule.user_groups for g in user.groups)):
        return False
    if rule.verbs and info.verb not in rule.verbs:
        return False
    if rule.namespaces or rule.resources:
        return _matches_resource(rule, info)
    if rule.non_resource_urls:
        return not info.is_resource_request and any(
            _path_matches(info.path, spec) for spec in rule.non_resource_urls
        )
    return True


def _path_matches(path: str, spec: str) -> bool:
    if spec in ("*", path):
        return True
    return spec.endswith("*") and path.startswith(spec.rstrip("*"))


def _matches_resource(rule: PolicyRule, info: RequestInfo) -> bool:
    if not info.is_resource_request:
        return False
    # Non-namespaced resources have the empty namespace.
    if rule.namespaces and info.namespace not in rule.namespaces:
        return False
    if not rule.resources:
        return True
    resource, subresource = info.resource, info.subresource
    combined = f"{resource}/{subresource}" if subresource else resource
    for group_resources in rule.resources:
        if group_resources.group != info.api_group:
            continue
        if not group_resources.resources:
            return True
        if group_resources.resource_names and info.name not in group_resources.resource_names:
            continue
        for spec in group_resources.resources:
            if spec in (combined, "*"):
                return True
            if subresource and spec.startswith("*/") and subresource == spec[2:]:
                return True
            if spec.endswith("/*") and resource == spec[:-2]:
                return True
    return False


# --- loading -----------------------------------------------------------------------------


def load_policy(path: str) -> Policy:
    """policy.LoadPolicyFromFile; errors read as Go's, prefixed by ApplyTo's wording."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise PolicyError(
            f"loading audit policy file: failed to read file path {go_quote(path)}: {exc}"
        ) from None
    try:
        return parse_policy(data)
    except PolicyError as exc:
        raise PolicyError(f"loading audit policy file: {exc}: from file {path}") from None


def parse_policy(data: bytes | str) -> Policy:
    """policy.LoadPolicyFromBytes: decode, warn about unknown fields (Go decodes strictly,
    then leniently with a warning), validate, require at least one rule."""
    try:
        doc = yaml.load(data, Loader=yaml.CSafeLoader)
    except yaml.YAMLError as exc:
        raise PolicyError(f"failed decoding: {exc}") from None
    if not isinstance(doc, Mapping):
        raise PolicyError("failed decoding: the policy must be a YAML mapping")
    kind, api_version = doc.get("kind"), doc.get("apiVersion")
    if not kind:
        raise PolicyError("failed decoding: Object 'Kind' is missing")
    if api_version != API_VERSION:
        raise PolicyError(
            f"failed decoding: no kind {go_quote(str(kind))} is registered for version "
            f"{go_quote(str(api_version or ''))}"
        )
    if kind != "Policy":
        raise PolicyError(f'failed decoding: expected kind "Policy", got {go_quote(str(kind))}')
    decoder = _Decoder()
    policy = decoder.policy(doc)
    if decoder.unknown:
        log.warning(
            "Audit policy contains errors, falling back to lenient decoding: "
            "strict decoding error: %s",
            ", ".join(f"unknown field {go_quote(name)}" for name in decoder.unknown),
        )
    errors = _validate(doc)
    if errors:
        raise PolicyError(_aggregate(errors))
    if not policy.rules:
        raise PolicyError("loaded illegal policy with 0 rules")
    return policy


class _Decoder:
    """JSON-style decoding of the YAML document into the policy types; type mismatches fail
    (as encoding/json does), unknown fields are collected for the warning."""

    def __init__(self) -> None:
        self.unknown: list[str] = []

    def _fields(self, obj: Mapping[Any, Any], allowed: frozenset[str], path: str) -> None:
        for key in obj:
            if key not in allowed:
                self.unknown.append(f"{path}{key}")

    def policy(self, doc: Mapping[Any, Any]) -> Policy:
        self._fields(doc, _POLICY_FIELDS, "")
        if not isinstance(doc.get("metadata") or {}, Mapping):
            raise _type_error("metadata", doc.get("metadata"), "object")
        omit_stages = frozenset(_stages(doc.get("omitStages"), "omitStages"))
        rules = tuple(
            self.rule(raw, f"rules[{i}]", omit_stages)
            for i, raw in enumerate(_list(doc.get("rules"), "rules", "[]PolicyRule"))
        )
        return Policy(
            rules=rules,
            omit_stages=omit_stages,
            omit_managed_fields=_bool(doc.get("omitManagedFields"), "omitManagedFields") or False,
        )

    def rule(self, raw: object, path: str, policy_stages: frozenset[Stage]) -> PolicyRule:
        if not isinstance(raw, Mapping):
            raise _type_error(path, raw, "PolicyRule")
        self._fields(raw, _RULE_FIELDS, f"{path}.")
        level = raw.get("level")
        if level is not None and not isinstance(level, str):
            raise _type_error(f"{path}.level", level, "string")
        return PolicyRule(
            # Validation reports a missing or unknown level with the rule's path.
            level=Level(level) if isinstance(level, str) and level in _LEVEL_NAMES else Level.NONE,
            users=frozenset(_strings(raw.get("users"), f"{path}.users")),
            user_groups=frozenset(_strings(raw.get("userGroups"), f"{path}.userGroups")),
            verbs=frozenset(_strings(raw.get("verbs"), f"{path}.verbs")),
            resources=tuple(
                self.group_resources(item, f"{path}.resources[{i}]")
                for i, item in enumerate(
                    _list(raw.get("resources"), f"{path}.resources", "[]GroupResources")
                )
            ),
            namespaces=frozenset(_strings(raw.get("namespaces"), f"{path}.namespaces")),
            non_resource_urls=tuple(
                _strings(raw.get("nonResourceURLs"), f"{path}.nonResourceURLs")
            ),
            omit_stages=policy_stages
            | frozenset(_stages(raw.get("omitStages"), f"{path}.omitStages")),
            omit_managed_fields=_bool(raw.get("omitManagedFields"), f"{path}.omitManagedFields"),
        )

    def group_resources(self, raw: object, path: str) -> GroupResources:
        if not isinstance(raw, Mapping):
            raise _type_error(path, raw, "GroupResources")
        self._fields(raw, _GROUP_RESOURCES_FIELDS, f"{path}.")
        group = raw.get("group")
        if group is not None and not isinstance(group, str):
            raise _type_error(f"{path}.group", group, "string")
        return GroupResources(
            group=group or "",
            resources=tuple(_strings(raw.get("resources"), f"{path}.resources")),
            resource_names=tuple(_strings(raw.get("resourceNames"), f"{path}.resourceNames")),
        )


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Sequence):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def _type_error(path: str, value: object, go_type: str) -> PolicyError:
    return PolicyError(
        f"failed decoding: {path}: cannot unmarshal {_json_type(value)} into {go_type}"
    )


def _list(value: object, path: str, go_type: str) -> list[object]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _type_error(path, value, go_type)
    return value


def _strings(value: object, path: str) -> list[str]:
    items = _list(value, path, "[]string")
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise _type_error(f"{path}[{i}]", item, "string")
    return [str(item) for item in items]


def _bool(value: object, path: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise _type_error(path, value, "bool")


def _stages(value: object, path: str) -> Iterable[Stage]:
    # Unknown stages are reported by validation; they can never match a stage.
    return (Stage(s) for s in _strings(value, path) if s in _STAGE_NAMES)


# --- validation (pkg/apis/audit/validation/validation.go) ---------------------------------


def _go_value(value: object) -> str:
    """A field.Error's bad value: strings quoted, string lists as Go's %#v."""
    if isinstance(value, str):
        return go_quote(value)
    if isinstance(value, list):
        return "[]string{" + ", ".join(go_quote(str(v)) for v in value) + "}"
    return str(value)


def _invalid(path: str, value: object, detail: str) -> str:
    return f"{path}: Invalid value: {_go_value(value)}: {detail}"


def _validate(doc: Mapping[Any, Any]) -> list[str]:
    errors = _validate_stages(doc.get("omitStages"), "omitStages")
    for i, rule in enumerate(doc.get("rules") or []):
        errors.extend(_validate_rule(rule, f"rules[{i}]"))
    return errors


def _validate_rule(rule: Mapping[str, Any], path: str) -> list[str]:
    errors: list[str] = []
    level = rule.get("level") or ""
    if not level:
        errors.append(f"{path}.level: Required value")
    elif level not in _LEVEL_NAMES:
        errors.append(
            f"{path}.level: Unsupported value: {go_quote(level)}: supported values: {_LEVELS}"
        )
    urls = rule.get("nonResourceURLs") or []
    for i, url in enumerate(urls):
        if url == "*":
            continue
        if not url.startswith("/"):
            errors.append(
                _invalid(
                    f"{path}.nonResourceURLs[{i}]",
                    url,
                    "non-resource URL rules must begin with a '/' character",
                )
            )
        if url and "*" in url[:-1]:
            errors.append(
                _invalid(
                    f"{path}.nonResourceURLs[{i}]",
                    url,
                    "non-resource URL wildcards '*' must be the final character of the rule",
                )
            )
    # Go names these fields without the list index (fldPath.Child("group")).
    for group_resources in rule.get("resources") or []:
        group = group_resources.get("group") or ""
        if group:
            problems = []
            if len(group) > 253:
                problems.append("must be no more than 253 characters")
            if not _DNS1123_SUBDOMAIN.fullmatch(group):
                problems.append(_DNS1123_SUBDOMAIN_MESSAGE)
            if problems:
                errors.append(_invalid(f"{path}.resources.group", group, ",".join(problems)))
        names = group_resources.get("resourceNames") or []
        if names and not group_resources.get("resources"):
            errors.append(
                _invalid(
                    f"{path}.resources.resourceNames",
                    names,
                    "using resourceNames requires at least one resource",
                )
            )
    errors.extend(_validate_stages(rule.get("omitStages"), f"{path}.omitStages"))
    if urls and (rule.get("resources") or rule.get("namespaces")):
        errors.append(
            _invalid(
                f"{path}.nonResourceURLs",
                urls,
                "rules cannot apply to both regular resources and non-resource URLs",
            )
        )
    return errors


def _validate_stages(stages: list[str] | None, path: str) -> list[str]:
    return [
        _invalid(f"{path}[{i}]", stage, f"allowed stages are {_STAGES}")
        for i, stage in enumerate(stages or [])
        if stage not in _STAGE_NAMES
    ]


def _aggregate(errors: list[str]) -> str:
    """utilerrors.NewAggregate: one error as is, several as "[a, b]" without duplicates."""
    unique = list(dict.fromkeys(errors))
    return unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]"
