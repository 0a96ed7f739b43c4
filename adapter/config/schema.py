"""The prometheus-adapter config file as immutable values.

Field names and nesting follow the Go adapter's `pkg/config/config.go`; the YAML key of each
field is given in its comment where it differs from the attribute name.
"""

from dataclasses import dataclass, field

__all__ = [
    "AdapterConfig",
    "DiscoveryRule",
    "GroupResourceRef",
    "LabelValueReplacement",
    "NameMapping",
    "RegexFilter",
    "ResourceMapping",
    "ResourceRule",
    "ResourceRules",
]


@dataclass(frozen=True, slots=True)
class GroupResourceRef:
    """A group-resource as written in `resources.overrides`: singular or plural, any case."""

    resource: str
    group: str = ""


@dataclass(frozen=True, slots=True)
class RegexFilter:
    """One `seriesFilters` entry; exactly one of `is`/`isNot` must be set."""

    is_: str = ""  # `is`
    is_not: str = ""  # `isNot`


@dataclass(frozen=True, slots=True)
class ResourceMapping:
    template: str = ""
    overrides: dict[str, GroupResourceRef] = field(default_factory=dict)
    # Only meaningful for externalRules; None means "not set" (the default, true).
    namespaced: bool | None = None


@dataclass(frozen=True, slots=True)
class NameMapping:
    matches: str = ""
    as_: str = ""  # `as`


@dataclass(frozen=True, slots=True)
class LabelValueReplacement:
    """Find/replace on label values (accepted from Go adapter master after v0.12.0)."""

    find: str = ""
    replace: str = ""


@dataclass(frozen=True, slots=True)
class DiscoveryRule:
    series_query: str = ""  # `seriesQuery`
    series_filters: tuple[RegexFilter, ...] = ()  # `seriesFilters`
    resources: ResourceMapping = field(default_factory=ResourceMapping)
    name: NameMapping = field(default_factory=NameMapping)
    metrics_query: str = ""  # `metricsQuery`
    label_value_replacements: tuple[LabelValueReplacement, ...] = ()  # `labelValueReplacements`


@dataclass(frozen=True, slots=True)
class ResourceRule:
    container_query: str = ""  # `containerQuery`
    node_query: str = ""  # `nodeQuery`
    resources: ResourceMapping = field(default_factory=ResourceMapping)
    container_label: str = ""  # `containerLabel`


@dataclass(frozen=True, slots=True)
class ResourceRules:
    cpu: ResourceRule = field(default_factory=ResourceRule)
    memory: ResourceRule = field(default_factory=ResourceRule)
    window_seconds: float = 0.0  # `window`, a Prometheus duration


@dataclass(frozen=True, slots=True)
class AdapterConfig:
    rules: tuple[DiscoveryRule, ...] = ()
    external_rules: tuple[DiscoveryRule, ...] = ()  # `externalRules`
    # None when the key is absent: the Go adapter serves metrics.k8s.io only when it is present.
    resource_rules: ResourceRules | None = None  # `resourceRules`
