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
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from adapter.discovery.label_names import LabelNamesLister, list_label_name_shapes, shapes_agree
from adapter.discovery.registry import MetricRegistry, SeriesShape, build_registry
from adapter.golang.duration import format_go_duration
from adapter.naming.rules import MetricRule
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
    failures: dict[str, str]  # seriesQuery -> error message
    registry: MetricRegistry
    queries: int = 0
    kept: int = 0  # failed queries whose last good series were kept
    causes: dict[str, int] = field(default_factory=dict)  # error -> how many queries

    @property
    def ok(self) -> bool:
        return not self.failures


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


@dataclass
class Relister:
    """`mode`: SERIES lists every series (streamed), as the Go adapter; LABEL_NAMES asks for
    metric names and their label names (see `label_names`); AUTO uses label names once a
    first relist has shown them to agree with a series listing, and series otherwise."""

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
    _shapes: dict[str, frozenset[SeriesShape]] = field(default_factory=dict)
    # AUTO: None until a relist has compared the two ways, then whether label names agreed.
    _label_names_agree: bool | None = None
    _failed_checks: int = 0

    @property
    def queries(self) -> list[str]:
        """Distinct series queries, in rule order."""
        return list(
            dict.fromkeys(r.series_query for r in (*self.custom_rules, *self.external_rules))
        )

    def update_rules(
        self, custom_rules: Sequence[MetricRule], external_rules: Sequence[MetricRule]
    ) -> None:
        """Use new rules from the next relist on (a config reload). Series already listed
        for queries the new rules share are kept; the others are dropped."""
        self.custom_rules = custom_rules
        self.external_rules = external_rules
        kept = set(self.queries)
        self._shapes = {q: s for q, s in self._shapes.items() if q in kept}

    @property
    def uses_label_names(self) -> bool:
        return self.mode == LABEL_NAMES or (
            self.mode == AUTO and self._label_names_agree is not False
        )

    async def _list(self, query: str, start: float) -> frozenset[SeriesShape]:
        if self.uses_label_names:
            assert isinstance(self.lister, DiscoveryLister)
            try:
                shapes = await list_label_name_shapes(self.lister, query, start)
            except Exception as exc:
                if self.mode != AUTO:
                    raise
                # A backend without these endpoints (an HTTP error status) lists series from
                # now on; after a connection failure or timeout, label names are tried again.
                if isinstance(exc, PrometheusError) and exc.status is not None:
                    self._label_names_agree = False
                # When the series listing fails too, its failure is the one the relist reports.
                shapes = await self._list_series(query, start)
                log.warning(
                    "discovery from label names failed for %r (%s); listed its series", query, exc
                )
                return shapes
            if shapes is not None:
                return shapes
        return await self._list_series(query, start)

    async def _list_series(self, query: str, start: float) -> frozenset[SeriesShape]:
        fold = _ShapeFold()
        await self.lister.stream_series([query], start=start, sink=fold)
        return fold.shapes()

    async def _check_label_names(self, queries: Sequence[str], start: float) -> None:
        """AUTO: list the series once and compare; on any difference (a backend that ignores
        `match[]` on its label endpoints) use the series from now on."""
        try:
            listed = await asyncio.gather(*(self._list_series(q, start) for q in queries))
        except Exception as exc:
            # Series too many to list within --prometheus-timeout, say: label names are then
            # the only way that works. Try again after the next relists, a few times.
            self._failed_checks += 1
            if self._failed_checks >= _MAX_FAILED_CHECKS:
                self._label_names_agree = True
            log.warning(
                "unable to check label-name discovery against a series listing (%s)%s",
                exc,
                "; using label names unchecked" if self._label_names_agree else "",
            )
            return
        series = dict(zip(queries, listed, strict=True))
        self._label_names_agree = all(shapes_agree(series[q], self._shapes[q]) for q in queries)
        if self._label_names_agree:
            log.info("discovery from label names agrees with the series listing; using it")
            return
        log.warning(
            "discovery from label names differs from the series listing (does Prometheus "
            "ignore match[] on /api/v1/labels?); listing every series from now on"
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
        queries = self.queries
        start = self.clock() - self.max_age
        results = await asyncio.gather(
            *(self._list(q, start) for q in queries), return_exceptions=True
        )
        failures: dict[str, str] = {}
        causes: dict[str, list[str]] = {}
        for query, result in zip(queries, results, strict=True):
            if isinstance(result, BaseException):
                if isinstance(result, asyncio.CancelledError):
                    raise result
                failures[query] = str(result) or type(result).__name__
                causes.setdefault(failures[query], []).append(query)
                log.debug("unable to list series for query %r: %s", query, result)
            else:
                self._shapes[query] = result
        self.registry = build_registry(self.custom_rules, self.external_rules, self._shapes)
        outcome = RelistResult(
            time.perf_counter() - began,
            failures,
            self.registry,
            queries=len(queries),
            kept=sum(q in self._shapes for q in failures),
            causes={cause: len(failed) for cause, failed in causes.items()},
        )
        if len(failures) < len(queries) or not queries:
            self.ready.set()
        if self.observer is not None:
            self.observer(outcome)
        if self.mode == AUTO and self._label_names_agree is None and not failures and queries:
            # After `ready`: the first answers need not wait for the slower series listing.
            await self._check_label_names(queries, start)
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
