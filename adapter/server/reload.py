"""Live config reload: on SIGHUP and when the config file changes.

The Go adapter needs a pod restart for a config change (Go #104, #678). Here a new config is
loaded and validated in full; a valid one is applied at once (rules swapped, discovery rerun
immediately, requests in flight finish with the rules they started with); an invalid one is
logged error by error, counted in `/metrics`, and the old config keeps serving.

A mounted ConfigMap changes by swapping the `..data` symlink, so the file's identity is taken
through the symlink (stat, not lstat) and its content hashed: a change of either triggers a
reload, an unchanged hash does not.
"""

import asyncio
import hashlib
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge

from adapter.config.errors import ConfigError
from adapter.naming.rules import CompiledConfig

__all__ = ["ConfigReloadMetrics", "ConfigReloader", "config_hash"]

log = logging.getLogger(__name__)


def config_hash(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


class ConfigReloadMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.info = Gauge(
            "prometheus_adapter_config_info",
            "The config in use: 1 for the SHA-256 of the file's content.",
            ["sha256"],
            registry=registry,
        )
        self.reloads = Counter(
            "prometheus_adapter_config_reloads_total",
            "Config reload attempts, by result.",
            ["result"],
            registry=registry,
        )
        self.last_successful = Gauge(
            "prometheus_adapter_config_last_reload_successful",
            "1 when the last reload attempt succeeded (or none failed since start-up), else 0.",
            registry=registry,
        )
        self.last_successful.set(1)

    def in_use(self, old: str, new: str) -> None:
        if old:
            self.info.remove(old)
        self.info.labels(new).set(1)


def _identity(path: str) -> tuple[int, int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class ConfigReloader:
    def __init__(
        self,
        path: str,
        load: Callable[[], CompiledConfig],
        apply: Callable[[CompiledConfig], Awaitable[None]],
        metrics: ConfigReloadMetrics,
        *,
        poll_interval: float = 1.0,
    ) -> None:
        self._path = path
        self._load = load
        self._apply = apply
        self._metrics = metrics
        self._poll_interval = poll_interval
        self._lock = asyncio.Lock()
        self._identity = _identity(path)
        self.hash = config_hash(path)
        metrics.in_use("", self.hash)

    async def reload(self, reason: str) -> bool:
        """Load, validate and apply the file if its content changed; True when a new config
        is in use afterwards."""
        async with self._lock:
            self._identity = _identity(self._path)
            try:
                new_hash = config_hash(self._path)
            except OSError as exc:
                return self._failed(reason, f"cannot read {self._path}: {exc.strerror or exc}")
            if new_hash == self.hash:
                return False
            try:
                compiled = self._load()
            except ConfigError as exc:
                return self._failed(reason, exc.describe())
            for warning in compiled.warnings:
                log.warning("config reload: %s", warning.format(compiled.file))
            await self._apply(compiled)
            self._metrics.in_use(self.hash, new_hash)
            self._metrics.reloads.labels("success").inc()
            self._metrics.last_successful.set(1)
            log.info("config reloaded (%s): %s, sha256 %s", reason, self._path, new_hash[:12])
            self.hash = new_hash
            return True

    def _failed(self, reason: str, why: str) -> bool:
        self._metrics.reloads.labels("failure").inc()
        self._metrics.last_successful.set(0)
        log.error("config reload (%s) failed; the previous config stays in use:\n%s", reason, why)
        return False

    def request_reload(self, reason: str = "SIGHUP") -> None:
        """For signal handlers: reload in the background."""
        task = asyncio.get_running_loop().create_task(self.reload(reason))
        task.add_done_callback(_log_unexpected)

    async def watch(self) -> None:
        """Poll the file's identity (through symlinks) and reload when it changes."""
        while True:
            await asyncio.sleep(self._poll_interval)
            if _identity(self._path) != self._identity:
                try:
                    await self.reload("file changed")
                except Exception:  # a bug in applying must not end the watch
                    log.exception("config reload failed unexpectedly")


def _log_unexpected(task: "asyncio.Task[bool]") -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("config reload failed unexpectedly", exc_info=task.exception())
