"""Live config reload: on SIGHUP and when the config file changes.

The Go adapter needs a pod restart for a config change (Go #104, #678). Here a new config is
loaded and validated in full; a valid one is applied at once (rules swapped, discovery rerun
immediately, requests in flight finish with the rules they started with); an invalid one is
logged error by error, counted in `/metrics`, and the old config keeps serving.

A reload also refuses what is valid YAML but almost certainly a mistake: an unreadable,
empty or whitespace-only file, and a config without any rules while the one in use has some
(applying it would withdraw every metric while /readyz stays green). Start-up is not
affected: an empty config there is served as the Go adapter serves it.

`prometheus_adapter_config_last_reload_successful` says whether the file on disk is what is
served: a failure sets it to 0, and it goes back to 1 as soon as the file again holds the
config in use (the same SHA-256), without applying anything.

A mounted ConfigMap changes by swapping the `..data` symlink, so the file's identity is taken
through the symlink (stat, not lstat), with its mode and ctime so that a chmod is seen too;
a change of identity makes the file be read and hashed again. SIGHUP always re-reads and
re-validates the file, even when nothing about it changed.
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

__all__ = ["ConfigReloadMetrics", "ConfigReloader", "config_hash", "has_rules"]

log = logging.getLogger(__name__)

# (device, inode, size, mtime, ctime, mode) of the file behind the path's symlinks.
FileIdentity = tuple[int, int, int, int, int, int]


def config_hash(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def has_rules(compiled: CompiledConfig) -> bool:
    """Whether the config serves any metrics API."""
    return bool(compiled.rules or compiled.external_rules or compiled.resource_rules is not None)


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
            "0 when the config file on disk was refused and another config still serves; "
            "1 otherwise (a successful reload, or the file matches the config in use).",
            registry=registry,
        )
        self.last_successful.set(1)

    def in_use(self, old: str, new: str) -> None:
        if old:
            self.info.remove(old)
        self.info.labels(new).set(1)


def _identity(path: str) -> FileIdentity | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_mode)


class ConfigReloader:
    """Reloads the config file at `path` with `load` and hands a valid new config to `apply`
    (which may refuse it by raising ConfigError before it changes anything).

    `served` is the config start-up loaded (whether it has rules decides if a config without
    any is refused); without it, the file is loaded once here to find out.
    """

    def __init__(
        self,
        path: str,
        load: Callable[[], CompiledConfig],
        apply: Callable[[CompiledConfig], Awaitable[None]],
        metrics: ConfigReloadMetrics,
        *,
        poll_interval: float = 1.0,
        served: CompiledConfig | None = None,
    ) -> None:
        self._path = path
        self._load = load
        self._apply = apply
        self._metrics = metrics
        self._poll_interval = poll_interval
        self._lock = asyncio.Lock()
        self._identity = _identity(path)
        self.hash = config_hash(path)
        self._failing = False  # the last check refused the file on disk
        self._served_has_rules = self._initial_has_rules() if served is None else has_rules(served)
        metrics.in_use("", self.hash)

    def _initial_has_rules(self) -> bool:
        try:
            return has_rules(self._load())
        except ConfigError:
            # The file changed since start-up loaded it; err on the side of refusing an
            # empty config later.
            return True

    async def reload(self, reason: str, *, recheck: bool = True) -> bool:
        """Read the file and, when it holds a new valid config, apply it; True when a new
        config is in use afterwards.

        With `recheck` (SIGHUP), a file whose content is the config in use is validated
        again; without it (a file change), matching the config in use is enough."""
        async with self._lock:
            # Taken before reading: a change while we read makes the next poll look again.
            self._identity = _identity(self._path)
            try:
                content = Path(self._path).read_bytes()
            except OSError as exc:
                return self._refuse(reason, f"{self._path}: cannot read: {exc.strerror or exc}")
            new_hash = hashlib.sha256(content).hexdigest()
            is_served = new_hash == self.hash
            if is_served and not recheck:
                return self._matches_served(reason, revalidated=False)
            if not is_served and not content.strip():
                what = "empty" if not content else "whitespace only"
                return self._refuse(reason, f"{self._path}: the file is {what}")
            try:
                compiled = self._load()
            except ConfigError as exc:
                return self._refuse(reason, exc.describe())
            if _hash_or_none(self._path) != new_hash:
                # Rewritten while `load` read it: what was loaded may be neither version.
                self._identity = None  # the next poll reads it again
                log.info("config reload (%s): %s changed while being read", reason, self._path)
                return False
            if is_served:
                return self._matches_served(reason, revalidated=True)
            if self._served_has_rules and not has_rules(compiled):
                return self._refuse(
                    reason,
                    f"{self._path}: defines no rules, externalRules or resourceRules, which "
                    "would withdraw every metric the config in use serves",
                )
            for warning in compiled.warnings:
                log.warning("config reload: %s", warning.format(compiled.file))
            try:
                # `apply` may still refuse the config before changing anything (a named
                # Prometheus server whose CA or token file cannot be read).
                await self._apply(compiled)
            except ConfigError as exc:
                return self._refuse(reason, exc.describe())
            self._metrics.in_use(self.hash, new_hash)
            self._metrics.reloads.labels("success").inc()
            self._metrics.last_successful.set(1)
            self._failing = False
            self._served_has_rules = has_rules(compiled)
            log.info("config reloaded (%s): %s, sha256 %s", reason, self._path, new_hash[:12])
            self.hash = new_hash
            return True

    def _matches_served(self, reason: str, *, revalidated: bool) -> bool:
        """The file holds the config in use: nothing to apply; a failure before is over."""
        if not (revalidated or self._failing):
            return False  # touched, not changed: nothing to report
        self._metrics.reloads.labels("success").inc()
        self._metrics.last_successful.set(1)
        self._failing = False
        checked = "valid and " if revalidated else ""
        log.info(
            "config reload (%s): %s is %sthe config in use, sha256 %s",
            reason,
            self._path,
            checked,
            self.hash[:12],
        )
        return False

    def _refuse(self, reason: str, why: str) -> bool:
        """Count and log a refused file; `why` names the file."""
        self._metrics.reloads.labels("failure").inc()
        self._metrics.last_successful.set(0)
        self._failing = True
        log.error("config reload (%s) failed; the previous config stays in use: %s", reason, why)
        return False

    def request_reload(self, reason: str = "SIGHUP") -> None:
        """For signal handlers: re-read and re-validate the file in the background."""
        task = asyncio.get_running_loop().create_task(self.reload(reason))
        task.add_done_callback(_log_unexpected)

    async def watch(self) -> None:
        """Poll the file's identity (through symlinks) and look at it again when it changes."""
        while True:
            await asyncio.sleep(self._poll_interval)
            if _identity(self._path) != self._identity:
                try:
                    await self.reload("file changed", recheck=False)
                except Exception:  # a bug in applying must not end the watch
                    log.exception("config reload failed unexpectedly")


def _hash_or_none(path: str) -> str | None:
    try:
        return config_hash(path)
    except OSError:
        return None


def _log_unexpected(task: "asyncio.Task[bool]") -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("config reload failed unexpectedly", exc_info=task.exception())
