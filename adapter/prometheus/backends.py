"""Named Prometheus backends: `prometheusServers` (not in the Go adapter).

A config may define Prometheus servers besides the command line's (`--prometheus-url` and its
flags, named DEFAULT_SERVER, "default"); a rule in `rules` or `externalRules`, and
`resourceRules` as a whole, names the one that lists and queries its series with
`prometheusServer: <name>`. A rule that names none uses the command line's, as before.

Each entry's connection settings are its own: `headers`, `tokenFile`, `caFile`,
`clientCertFile` and `clientKeyFile` are never taken from the command line (one server's
credentials must not reach another), while `verb` and `timeout`, when unset, are
`--prometheus-verb` and `--prometheus-timeout`. The adapter-side limits
(`--prometheus-max-get-url-length`, `--prometheus-max-response-size`) apply to every backend.
"""

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol, TypeVar

from yarl import URL

from adapter.config.errors import ConfigError, ConfigIssue
from adapter.config.schema import PrometheusServer
from adapter.prometheus.client import PrometheusClient, RequestObserver
from adapter.prometheus.config import DEFAULT_SERVER, PrometheusConfig, PrometheusConfigError
from adapter.prometheus.transport import display_url

__all__ = [
    "DEFAULT_SERVER",
    "NamesServer",
    "ServerClients",
    "build_clients",
    "client_for_rule",
    "server_config",
    "server_of",
    "server_url",
]

C = TypeVar("C")

ServerClients = dict[str, tuple[PrometheusServer, PrometheusClient]]
"""The named backends' clients, by name, with the settings each was made from."""


class NamesServer(Protocol):
    """A rule that may name its backend: a compiled rule (`MetricRule`), `resourceRules`
    compiled (`ResourceMetricRules`), or as written (`DiscoveryRule`, `ResourceRules`)."""

    @property
    def prometheus_server(self) -> str: ...


def server_of(rule: NamesServer) -> str:
    """The name of the backend that serves `rule`: DEFAULT_SERVER when it names none."""
    return rule.prometheus_server or DEFAULT_SERVER


def client_for_rule(rule: NamesServer, clients: Mapping[str, C]) -> C:
    """Which Prometheus client serves `rule`: `clients` holds one per backend name, the
    command line's under DEFAULT_SERVER. A loaded config names no backend it lacks; a
    mapping without it raises KeyError."""
    return clients[server_of(rule)]


def server_config(server: PrometheusServer, base: PrometheusConfig) -> PrometheusConfig:
    """The connection settings of a named backend; `base` is the command line's."""
    return PrometheusConfig(
        url=server.url,
        verb=server.verb or base.verb,
        headers=server.headers,
        token_file=server.token_file,
        ca_file=server.ca_file,
        client_cert_file=server.client_cert_file,
        client_key_file=server.client_key_file,
        timeout=base.timeout if server.timeout_seconds is None else server.timeout_seconds,
        max_connections=base.max_connections,
        max_get_url_length=base.max_get_url_length,
        max_response_size=base.max_response_size,
    )


def server_url(url: str) -> str:
    """A backend's URL as logs, metrics and reports show it: without credentials."""
    try:
        return display_url(URL(url))
    except ValueError:
        return ""


async def build_clients(
    servers: Sequence[PrometheusServer],
    base: PrometheusConfig,
    *,
    file: str,
    observer: Callable[[str, str], RequestObserver | None] | None = None,
    reuse: Mapping[str, tuple[PrometheusServer, PrometheusClient]] | None = None,
) -> tuple[ServerClients, ServerClients]:
    """A client for each server, as (the clients to use, the clients of `reuse` they replace
    or drop). A client of `reuse` whose server has the same settings is kept; others are made
    with `observer(name, url)` as their request observer.

    The clients' constructors read CA, certificate and token files: when one fails, every
    client made here is closed and ConfigError names each failing entry (file, line, path).
    """
    reuse = reuse or {}
    clients: ServerClients = {}
    made: list[PrometheusClient] = []
    issues: list[ConfigIssue] = []
    for index, server in enumerate(servers):
        known = reuse.get(server.name)
        if known is not None and known[0] == server:
            clients[server.name] = known
            continue
        watch = observer(server.name, server_url(server.url)) if observer is not None else None
        try:
            client = PrometheusClient(server_config(server, base), observer=watch)
        except PrometheusConfigError as exc:
            issues.append(ConfigIssue(f"prometheusServers[{index}]", str(exc), server.line))
            continue
        made.append(client)
        clients[server.name] = (server, client)
    if issues:
        for client in made:
            await client.close()
        raise ConfigError(file, issues)
    dropped = {
        name: known
        for name, known in reuse.items()
        if clients.get(name, (None, None))[1] is not known[1]
    }
    return clients, dropped
