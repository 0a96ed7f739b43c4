"""The server's Prometheus backends: the command line's and the config's `prometheusServers`
(not in the Go adapter; see adapter.prometheus.backends).

`ServerBackends` owns the named backends' clients, their single-flight queriers and their
metrics. Providers, discovery and the no-cluster object listers are given its `clients` and
`queriers` mappings, which it changes in place, so a reload reaches them at once.

A reload goes in two steps, so that a config whose backend cannot be built is refused before
anything changes: `prepare` builds the clients of new or changed entries (reading their CA,
certificate and token files; ConfigError names the entry), keeping the clients of unchanged
ones; `apply` swaps them in. A replaced or removed client is closed once the requests in
flight on it have had its timeout to finish, and a removed backend's own metrics go away.
"""

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from adapter.naming.rules import CompiledConfig
from adapter.prometheus.backends import ServerClients, build_clients
from adapter.prometheus.client import PrometheusClient
from adapter.prometheus.config import DEFAULT_SERVER, PrometheusConfig
from adapter.providers.querier import SingleFlightQuerier, route
from adapter.server.metrics import AdapterMetrics
from adapter.tasks import cancel_and_wait

__all__ = ["PreparedBackends", "RoutedSeries", "ServerBackends"]

log = logging.getLogger(__name__)

# Beyond a retired client's timeout, before it is closed.
_RETIRE_GRACE = 1.0


@dataclass(frozen=True, slots=True)
class PreparedBackends:
    """The clients of a config that `apply` may swap in, and those they replace."""

    clients: ServerClients
    dropped: ServerClients
    resource_server: str


class RoutedSeries:
    """A series lister that asks the backend `resourceRules` names at each call (no-cluster
    mode lists pods and nodes from their series)."""

    def __init__(self, backends: "ServerBackends") -> None:
        self._backends = backends

    async def series(
        self, matches: Sequence[str], start: float | None = None, end: float | None = None
    ) -> list[dict[str, str]]:
        backends = self._backends
        client = route(backends.resource_server, backends.default, backends.clients)
        return await client.series(matches, start, end)


class ServerBackends:
    def __init__(
        self,
        base: PrometheusConfig,
        default: PrometheusClient,
        metrics: AdapterMetrics,
        on_shared: Callable[[], None] | None = None,
    ) -> None:
        self.base = base
        self.default = default
        self._metrics = metrics
        self._on_shared = on_shared
        # The named backends only, by name; changed in place by `apply`.
        self.clients: dict[str, PrometheusClient] = {}
        self.queriers: dict[str, SingleFlightQuerier] = {}
        self.resource_server = DEFAULT_SERVER
        self._servers: ServerClients = {}
        self._retiring: set[asyncio.Task[None]] = set()

    async def prepare(self, compiled: CompiledConfig) -> PreparedBackends:
        """Build the clients `compiled` needs; raises ConfigError when one cannot be made."""
        clients, dropped = await build_clients(
            compiled.config.prometheus_servers,
            self.base,
            file=compiled.file,
            observer=self._metrics.backend_observer,
            reuse=self._servers,
        )
        rules = compiled.resource_rules
        resource_server = rules.prometheus_server if rules is not None else DEFAULT_SERVER
        return PreparedBackends(clients, dropped, resource_server)

    def apply(self, prepared: PreparedBackends) -> None:
        """Use the prepared clients from now on; retire those they replace."""
        queriers = {
            name: self.queriers[name]
            if name in self.queriers and self.clients.get(name) is client
            else SingleFlightQuerier(client, self._on_shared)
            for name, (_, client) in prepared.clients.items()
        }
        self._servers = dict(prepared.clients)
        self.clients.clear()
        self.clients.update({name: client for name, (_, client) in prepared.clients.items()})
        self.queriers.clear()
        self.queriers.update(queriers)
        self.resource_server = prepared.resource_server
        for name, (server, client) in prepared.dropped.items():
            if name not in prepared.clients:
                self._metrics.forget_backend(name)
                log.info("Prometheus server %r removed", name)
            else:
                log.info("Prometheus server %r changed: using a new client", name)
            timeout = server.timeout_seconds or self.base.timeout
            task = asyncio.create_task(self._close_later(client, timeout + _RETIRE_GRACE))
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)

    @staticmethod
    async def _close_later(client: PrometheusClient, delay: float) -> None:
        try:
            await asyncio.sleep(delay)
        finally:
            await client.close()

    async def discard(self, prepared: PreparedBackends) -> None:
        """Close the clients `prepare` made for a config that is not applied after all."""
        for name, (_, client) in prepared.clients.items():
            if self.clients.get(name) is not client:
                await client.close()

    async def close(self) -> None:
        """Close every named client, the retiring ones at once."""
        await cancel_and_wait(list(self._retiring))
        for client in self.clients.values():
            await client.close()
        self.clients.clear()
        self.queriers.clear()
