"""The relist loop: list series from Prometheus on an interval and swap in a new registry.

As in the Go adapter, each distinct `seriesQuery` is one `/api/v1/series` call over
`[now - max_age, now]`, all in parallel, and a relist runs at start-up and then `interval`
after the previous one finished. Unlike the Go adapter, a failing query does not throw away
the whole relist: it keeps its own last good series while the others are refreshed, and it is
retried sooner (backoff from 1 s up to the interval).

Each answer is streamed (`stream_series`) and folded into distinct series shapes batch by
batch, so a relist's memory does not grow with the number of series a query matches.
"""

import asyncio
import logging
import operator
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from adapter.discovery.label_names import LabelNamesLister, list_label_name_shapes, shapes_agree
from adapter.discovery.registry import (
    MetricRegistry,
    SeriesKey,
    SeriesShape,
    build_registry,
    key_query,
    key_server,
    series_key,
)
from adapter.golang.duration import format_go_duration
from adapter.naming.rules import MetricRule
from adapter.prometheus.config import DEFAULT_SERVER
from adapter.prometheus.errors import PrometheusError

__all__ = [
    "DISCOVERY_MODES",
    "DiscoveryLister",
    "RelistObserver",
    "RelistResult",
    "Relister",
    "SeriesLister",
    "SeriesStreamer",
]

log = logging.getLogger(__name__)


class SeriesLister(Protocol):
    """All the series at once: for answers known to be small (objects of one metric)."""

    async def series(
        self, matches: Sequence[str], start: float | None = None, end: float | None = None
    ) -> list[dict[str, str]]: ...


class SeriesStreamer(Protocol):
    """The series in batches, so that discovery never holds all of a large answer (a
    seriesQuery can match millions of series). `PrometheusClient` is one."""

    async def stream_series(
        self,
        matches: Sequence[str],
        start: float | None = None,
        end: float | None = None,
        *,
        sink: Callable[[list[dict[str, str]]], None],
    ) -> int: ...


_name_of = operator.methodcaller("get", "__name__", "")


class _ShapeFold:
    """Folds batches of series into their distinct (name, label names) as they arrive.

    Each series costs a tuple of its label names (in Prometheus' order, so series of one
    shape give equal tuples) and a set insertion, all iterated in C; SeriesShapes are made
    once per distinct tuple at the end."""

    __slots__ = ("_keys",)

    def __init__(self) -> None:
        self._keys: set[tuple[str, tuple[str, ...]]] = set()

    def __call__(self, batch: list[dict[str, str]]) -> None:
        self._keys.update(zip(map(_name_of, batch), map(tuple, batch), strict=True))

    def shapes(self) -> frozenset[SeriesShape]:
        return frozenset(
            SeriesShape(name, frozenset(labels).difference(("__name__",)))
            for name, labels in self._keys
        )


@dataclass(frozen=True, slots=True)
class RelistResult:
    seconds: float
    failures: dict[SeriesKey, str]  # series key (see `series_key`) -> error message
    registry: MetricRegistry
    queries: int = 0
    kept: int = 0  # failed queries whose last good series were kept
    causes: dict[str, int] = field(default_factory=dict)  # error -> how many queries
    # The backends this relist asked, by name (DEFAULT_SERVER for --prometheus-url).
    servers: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.failures

    def failures_of(self, server: str) -> int:
        """How many of the series queries sent to `server` failed."""
        return sum(1 for key in self.failures if key_server(key) == server)


def _key_text(key: SeriesKey) -> str:
    """A series key for logs: the query, and the backend when it is a named one."""
    server, query = key_server(key), key_query(key)
    return repr(query) if server == DEFAULT_SERVER else f"{query!r} on Prometheus server {server!r}"


class RelistObserver(Protocol):
    def __call__(self, result: RelistResult) -> None: ...


@runtime_checkable
class DiscoveryLister(SeriesStreamer, LabelNamesLister, Protocol):
    """Both ways of listing: every series, or metric names and their label names."""


# AUTO: series listings that may fail before label names are used without the check.
_MAX_FAILED_CHECKS = 3
# --discovery-mode values.
SERIES, LABEL_NAMES, AUTO = "series", "label-names", "auto"
DISCOVERY_MODES = (AUTO, SERIES, LABEL_NAMES)


@dataclass(slots=True)
class _ServerDiscovery:
    """One backend's lister and what AUTO mode learnt about it."""

    lister: SeriesStreamer
    # AUTO: None until a relist has compared the two ways, then whether label names agreed.
    label_names_agree: bool | None = None
    failed_checks: int = 0


@dataclass
class Relister:
    """`mode`: SERIES lists every series (streamed), as the Go adapter; LABEL_NAMES asks for
    metric names and their label names (see `label_names`); AUTO uses label names once a
    first relist has shown them to agree with a series listing, and series otherwise.

    `lister` is the command-line backend's; `listers` the named backends' (`prometheusServers`,
    not in the Go adapter), by name. Each backend is listed with its own rules' queries, and
    each (backend, query) keeps its own last good series, so a failing backend keeps its last
    discovery while the others stay fresh. AUTO decides per backend."""

    lister: SeriesStreamer
    custom_rules: Sequence[MetricRule]
    external_rules: Sequence[MetricRule]
    interval: float
    max_age: float
    observer: RelistObserver | None = None
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    registry: MetricRegistry = field(default_factory=MetricRegistry)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    mode: str = SERIES
    listers: Mapping[str, SeriesStreamer] = field(default_factory=dict)
    _shapes: dict[SeriesKey, frozenset[SeriesShape]] = field(default_factory=dict)
    _servers: dict[str, _ServerDiscovery] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._servers = {
            DEFAULT_SERVER: _ServerDiscovery(self.lister),
            **{name: _ServerDiscovery(lister) for name, lister in self.listers.items()},
        }

    @property
    def queries(self) -> list[str]:
        """Distinct series queries, in rule order."""
        return list(
            dict.fromkeys(r.series_query for r in (*self.custom_rules, *self.external_rules))
        )

    @property
    def keys(self) -> list[SeriesKey]:
        """Distinct (backend, series query) listings, in rule order (see `series_key`)."""
        return list(
            dict.fromkeys(series_key(r) for r in (*self.custom_rules, *self.external_rules))
        )

    def update_rules(
        self,
        custom_rules: Sequence[MetricRule],
        external_rules: Sequence[MetricRule],
        listers: Mapping[str, SeriesStreamer] | None = None,
    ) -> None:
        """Use new rules (and, when given, new named backends' listers) from the next relist
        on (a config reload). Series already listed for queries the new rules share on an
        unchanged backend are kept; the others are dropped."""
        self.custom_rules = custom_rules
        self.external_rules = external_rules
        changed: set[str] = set()  # backends whose series must be listed afresh
        if listers is not None:
            servers = {DEFAULT_SERVER: self._servers[DEFAULT_SERVER]}
            for name, lister in listers.items():
                known = self._servers.get(name)
                if known is not None and known.lister is lister:
                    servers[name] = known
                else:  # new, or its client changed
                    servers[name] = _ServerDiscovery(lister)
                    changed.add(name)
            self._servers = servers
            self.listers = dict(listers)
        kept = set(self.keys)
        self._shapes = {
            key: shapes
            for key, shapes in self._shapes.items()
            if key in kept and key_server(key) not in changed
        }

    @property
    def uses_label_names(self) -> bool:
        """Whether the command-line backend is listed through label names."""
        return self._uses_label_names(self._servers[DEFAULT_SERVER])

    @property
    def _label_names_agree(self) -> bool | None:
        """AUTO's verdict on the command-line backend (None: not checked yet)."""
        return self._servers[DEFAULT_SERVER].label_names_agree

    def _uses_label_names(self, server: _ServerDiscovery) -> bool:
        return self.mode == LABEL_NAMES or (
            self.mode == AUTO and server.label_names_agree is not False
        )

    def _server(self, key: SeriesKey) -> _ServerDiscovery:
        return self._servers[key_server(key)]

    async def _list(self, key: SeriesKey, start: float) -> frozenset[SeriesShape]:
        server = self._server(key)
        query = key_query(key)
        if self._uses_label_names(server):
            assert isinstance(server.lister, DiscoveryLister)
            try:
                shapes = await list_label_name_shapes(server.lister, query, start)
            except Exception as exc:
                if self.mode != AUTO:
                    raise
                # A backend without these endpoints (an HTTP error status) lists series from
                # now on; after a connection failure or timeout, label names are tried again.
                if isinstance(exc, PrometheusError) and exc.status is not None:
                    server.label_names_agree = False
                # When the series listing fails too, its failure is the one the relist reports.
                shapes = await self._list_series(server, query, start)
                log.warning(
                    "discovery from label names failed for %s (%s); listed its series",
                    _key_text(key),
                    exc,
                )
                return shapes
            if shapes is not None:
                return shapes
        return await self._list_series(server, query, start)

    @staticmethod
    async def _list_series(
        server: _ServerDiscovery, query: str, start: float
    ) -> frozenset[SeriesShape]:
        fold = _ShapeFold()
        await server.lister.stream_series([query], start=start, sink=fold)
        return fold.shapes()

    async def _check_label_names(self, name: str, keys: Sequence[SeriesKey], start: float) -> None:
        """AUTO: list the series of one backend once and compare; on any difference (a
        backend that ignores `match[]` on its label endpoints) use the series from now on."""
        server = self._servers[name]
        queries = [key_query(k) for k in keys]
        on = "" if name == DEFAULT_SERVER else f" of Prometheus server {name!r}"
        try:
            listed = await asyncio.gather(*(self._list_series(server, q, start) for q in queries))
        except Exception as exc:
            # Series too many to list within --prometheus-timeout, say: label names are then
            # the only way that works. Try again after the next relists, a few times.
            server.failed_checks += 1
            if server.failed_checks >= _MAX_FAILED_CHECKS:
                server.label_names_agree = True
            log.warning(
                "unable to check label-name discovery%s against a series listing (%s)%s",
                on,
                exc,
                "; using label names unchecked" if server.label_names_agree else "",
            )
            return
        series = dict(zip(keys, listed, strict=True))
        server.label_names_agree = all(shapes_agree(series[k], self._shapes[k]) for k in keys)
        if server.label_names_agree:
            log.info("discovery from label names%s agrees with the series listing; using it", on)
            return
        log.warning(
            "discovery from label names%s differs from the series listing (does Prometheus "
            "ignore match[] on /api/v1/labels?); listing every series from now on",
            on,
        )
        self._shapes.update(series)
        self.registry = build_registry(self.custom_rules, self.external_rules, self._shapes)

    async def relist_once(self) -> RelistResult:
        """One relist, logged in one line."""
        outcome = await self._relist()
        self._log(outcome, None)
        return outcome

    async def _relist(self) -> RelistResult:
        began = time.perf_counter()
        keys = self.keys
        start = self.clock() - self.max_age
        results = await asyncio.gather(
            *(self._list(k, start) for k in keys), return_exceptions=True
        )
        failures: dict[SeriesKey, str] = {}
        causes: dict[str, int] = {}
        for key, result in zip(keys, results, strict=True):
            if isinstance(result, BaseException):
                if isinstance(result, asyncio.CancelledError):
                    raise result
                failures[key] = str(result) or type(result).__name__
                backend = key_server(key)
                on = "" if backend == DEFAULT_SERVER else f"Prometheus server {backend!r}: "
                cause = on + failures[key]
                causes[cause] = causes.get(cause, 0) + 1
                log.debug("unable to list series for query %s: %s", _key_text(key), result)
            else:
                self._shapes[key] = result
        self.registry = build_registry(self.custom_rules, self.external_rules, self._shapes)
        servers = tuple(dict.fromkeys(key_server(k) for k in keys))
        outcome = RelistResult(
            time.perf_counter() - began,
            failures,
            self.registry,
            queries=len(keys),
            kept=sum(k in self._shapes for k in failures),
            causes=causes,
            servers=servers,
        )
        if len(failures) < len(keys) or not keys:
            self.ready.set()
        if self.observer is not None:
            self.observer(outcome)
        if self.mode == AUTO:
            # After `ready`: the first answers need not wait for the slower series listing.
            for name in servers:
                own = [k for k in keys if key_server(k) == name]
                server = self._servers[name]
                if server.label_names_agree is None and not any(k in failures for k in own):
                    await self._check_label_names(name, own, start)
        return outcome

    @staticmethod
    def _log(outcome: RelistResult, retry_in: float | None) -> None:
        """One line per relist: what was found, or what failed, why, what was kept and when
        the next attempt is (a dead Prometheus fails every query for one cause)."""
        if outcome.ok:
            log.info(
                "relist: %d metrics from %d series queries in %.3fs",
                len(outcome.registry),
                outcome.queries,
                outcome.seconds,
            )
            return
        failed = len(outcome.failures)
        why = "; ".join(
            cause if len(outcome.causes) == 1 else f"{count} with {cause}"
            for cause, count in outcome.causes.items()
        )
        if outcome.kept == failed:
            kept = "keeping their last good series"
        elif outcome.kept:
            kept = f"keeping the last good series of {outcome.kept}"
        else:
            kept = "no earlier series to keep"
        retry = f"; retrying in {format_go_duration(retry_in)}" if retry_in is not None else ""
        log.error(
            "relist: unable to list series for %d of %d series queries (%s; %d metrics): %s%s",
            failed,
            outcome.queries,
            kept,
            len(outcome.registry),
            why,
            retry,
        )

    async def run(self) -> None:
        """Relist forever (until cancelled); after a failure, again sooner (1 s, 2 s, 4 s...
        up to the interval)."""
        backoff = 1.0
        while True:
            try:
                result = await self._relist()
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug must not stop discovery; log it and retry
                log.exception("relist failed unexpectedly")
                result = None
            if result is not None and result.ok:
                backoff = 1.0
                delay = self.interval
            else:
                delay = min(backoff, self.interval)
                backoff = min(backoff * 2, self.interval)
            if result is not None:
                self._log(result, delay)
            await self.sleep(delay)
