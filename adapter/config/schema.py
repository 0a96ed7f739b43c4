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
    "PrometheusServer",
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
    # Not in the Go adapter: the name of a `prometheusServers` entry; "" for the command line's.
    prometheus_server: str = ""  # `prometheusServer`


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
    # Not in the Go adapter: the name of a `prometheusServers` entry; "" for the command line's.
    prometheus_server: str = ""  # `prometheusServer`


@dataclass(frozen=True, slots=True)
class PrometheusServer:
    """One entry of `prometheusServers` (not in the Go adapter): a named Prometheus backend
    with its own connection settings, named like the `--prometheus-*` flags they stand for.

    Credentials and TLS settings are the entry's own (never the command line's); `verb` and
    `timeout` fall back to `--prometheus-verb` and `--prometheus-timeout` when unset ("" and
    None). `line` is where the entry starts, for errors found after loading (an unreadable
    CA file); it takes no part in comparisons, so a reload that only moves an entry keeps
    its client."""

    name: str = ""
    url: str = ""
    headers: tuple[tuple[str, str], ...] = ()  # canonical names, in file order
    token_file: str = ""  # `tokenFile`
    ca_file: str = ""  # `caFile`
    client_cert_file: str = ""  # `clientCertFile`
    client_key_file: str = ""  # `clientKeyFile`
    verb: str = ""  # "GET" or "POST"; "" for --prometheus-verb
    timeout_seconds: float | None = None  # `timeout`, a Go duration; None for --prometheus-timeout
    line: int | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class AdapterConfig:
    rules: tuple[DiscoveryRule, ...] = ()
    external_rules: tuple[DiscoveryRule, ...] = ()  # `externalRules`
    # None when the key is absent: the Go adapter serves metrics.k8s.io only when it is present.
    resource_rules: ResourceRules | None = None  # `resourceRules`
    # Not in the Go adapter (which rejects the key): named Prometheus backends.
    prometheus_servers: tuple[PrometheusServer, ...] = ()  # `prometheusServers`
