"""Run a real Prometheus server for tests and demos, and poll its HTTP API.

Each :class:`PrometheusProcess` owns a temporary directory holding its config, TSDB data,
log and query log. The process is stopped by :meth:`PrometheusProcess.stop` (also on
cancellation), by an ``atexit`` hook, and by the kernel when the thread that started it dies
(``PR_SET_PDEATHSIG``), so a crashed or killed test run leaves nothing behind.

CLI for demos: ``python -m harness.prometheus --target 127.0.0.1:9100 --port 9090``.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import aiohttp
import yaml

from harness.packages import ensure_debian_package, ensure_prometheus
from harness.ports import free_port
from harness.processes import dying_with_parent

__all__ = ["PrometheusError", "PrometheusProcess", "create_blocks", "main"]

_T = TypeVar("_T")

_POLL_INTERVAL = 0.05
_LOOPBACK = "127.0.0.1"

# Processes started and not yet reaped, and temporary directories not yet removed, for the
# atexit hook.
_live: set[subprocess.Popen[bytes]] = set()
_temp_dirs: set[Path] = set()


@atexit.register
def _stop_all() -> None:
    for process in list(_live):
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        _live.discard(process)
    for directory in list(_temp_dirs):
        shutil.rmtree(directory, ignore_errors=True)
        _temp_dirs.discard(directory)


class PrometheusError(RuntimeError):
    """Prometheus did not start, or its API answered with an error."""


class PrometheusProcess:
    """A Prometheus server scraping ``targets`` (``host:port``) every ``scrape_interval``.

    ``port`` defaults to a free one, kept across :meth:`restart`. ``route_prefix`` (e.g.
    ``/prom``) moves every endpoint, the API included, under that path; :attr:`url` includes
    it. ``backfill`` is OpenMetrics text (see ``Dataset.openmetrics_history``) turned into
    TSDB blocks by promtool before the first start, so that range queries have history at once;
    ``backfill_file`` is the same from a file (left in place), for inputs too large to hold in
    memory. promtool gets ``backfill_timeout`` seconds for each. ``blocks`` is a directory of
    TSDB blocks made earlier (see :func:`create_blocks`), hard-linked (or copied) into the data
    directory before the first start; Prometheus never changes a block's files in place, so the
    source stays intact. ``workdir`` is kept when given; otherwise a temporary directory is made
    and removed by :meth:`close`.
    """

    def __init__(
        self,
        targets: Sequence[str] = (),
        *,
        port: int | None = None,
        route_prefix: str | None = None,
        scrape_interval: str = "1s",
        retention: str = "1h",
        backfill: str | None = None,
        backfill_file: Path | None = None,
        backfill_timeout: float = 120,
        blocks: Path | None = None,
        extra_args: Sequence[str] = (),
        workdir: Path | None = None,
        job: str = "harness",
    ) -> None:
        self.targets = list(targets)
        self.port = port if port is not None else free_port()
        prefix = (route_prefix or "").strip("/")
        self.route_prefix = f"/{prefix}" if prefix else ""
        self.scrape_interval = scrape_interval
        self.retention = retention
        self.backfill = backfill
        self.backfill_file = backfill_file
        self.backfill_timeout = backfill_timeout
        self.blocks = blocks
        self.extra_args = list(extra_args)
        self.job = job
        self._own_workdir = workdir is None
        if workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="harness-prometheus-"))
            _temp_dirs.add(self.workdir)
        else:
            self.workdir = Path(workdir)
        self.data_dir = self.workdir / "data"
        self.config_path = self.workdir / "prometheus.yml"
        self.log_path = self.workdir / "prometheus.log"
        self.query_log_path = self.workdir / "query.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._prepared = False

    @property
    def url(self) -> str:
        """Base URL with the route prefix, without a trailing slash."""
        return f"http://{_LOOPBACK}:{self.port}{self.route_prefix}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def target_labels(self, target: str) -> dict[str, str]:
        """The labels a scrape of ``target`` adds: what backfilled history must carry too."""
        return {"job": self.job, "instance": target}

    def config(self) -> dict[str, Any]:
        """The generated configuration."""
        scrape_configs: list[dict[str, Any]] = []
        if self.targets:
            scrape_configs.append(
                {
                    "job_name": self.job,
                    "honor_timestamps": True,
                    "honor_labels": True,
                    "static_configs": [{"targets": self.targets}],
                }
            )
        return {
            "global": {
                "scrape_interval": self.scrape_interval,
                # The default (10s) must not exceed the interval.
                "scrape_timeout": self.scrape_interval,
                "evaluation_interval": self.scrape_interval,
                "query_log_file": str(self.query_log_path),
            },
            "scrape_configs": scrape_configs,
        }

    def command(self, binary: str) -> list[str]:
        external = f"http://{_LOOPBACK}:{self.port}{self.route_prefix or '/'}"
        args = [
            binary,
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.data_dir}",
            f"--storage.tsdb.retention.time={self.retention}",
            f"--web.listen-address={_LOOPBACK}:{self.port}",
            f"--web.external-url={external}",
        ]
        if self.route_prefix:
            args.append(f"--web.route-prefix={self.route_prefix}")
        return args + self.extra_args

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    async def _prepare(self, binary: str) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(exist_ok=True)
        self.config_path.write_text(yaml.safe_dump(self.config(), sort_keys=False))
        if self.blocks is not None:
            await asyncio.to_thread(_link_blocks, self.blocks, self.data_dir)
        if self.backfill is not None:
            await self._run_backfill(binary, self.backfill)
        if self.backfill_file is not None:
            await create_blocks(
                self.backfill_file, self.data_dir, timeout=self.backfill_timeout, binary=binary
            )

    async def _run_backfill(self, binary: str, text: str) -> None:
        source = self.workdir / "backfill.om"
        source.write_text(text)
        try:
            await create_blocks(source, self.data_dir, timeout=self.backfill_timeout, binary=binary)
        finally:
            source.unlink(missing_ok=True)

    async def start(self, timeout: float = 30) -> None:
        """Start the server and wait until ``/-/ready`` answers 200."""
        if self.running:
            raise PrometheusError(f"Prometheus already running at {self.url}")
        binary = await asyncio.to_thread(ensure_prometheus)
        if not self._prepared:
            await self._prepare(binary)
            self._prepared = True
        with self.log_path.open("ab") as log:
            process = subprocess.Popen(
                dying_with_parent(self.command(binary)),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
            )
        self._process = process
        _live.add(process)
        try:
            await self._wait_ready(process, timeout)
        except BaseException:
            await asyncio.shield(self.stop())
            raise

    async def _wait_ready(self, process: subprocess.Popen[bytes], timeout: float) -> None:
        ready = f"{self.url}/-/ready"
        deadline = time.monotonic() + timeout
        last = "no attempt made"
        connector = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(connector=connector) as session:
            while True:
                if process.poll() is not None:
                    raise PrometheusError(
                        f"Prometheus exited with status {process.returncode} while starting; "
                        f"log {self.log_path}:\n{self.log_tail()}"
                    )
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"Prometheus not ready at {ready} after {timeout:g}s ({last}); "
                        f"log {self.log_path}:\n{self.log_tail()}"
                    )
                try:
                    request_timeout = aiohttp.ClientTimeout(total=max(min(remaining, 2), 0.01))
                    async with session.get(ready, timeout=request_timeout) as response:
                        await response.read()
                        if response.status == 200:
                            return
                        last = f"HTTP {response.status}"
                except (aiohttp.ClientError, OSError, TimeoutError) as error:
                    last = f"{type(error).__name__}: {error}"
                await asyncio.sleep(_POLL_INTERVAL)

    async def stop(self, timeout: float = 10) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` seconds; returns once the process is gone."""
        process = self._process
        if process is None:
            return
        try:
            if process.poll() is None:
                process.terminate()
                try:
                    await asyncio.to_thread(process.wait, timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    await asyncio.to_thread(process.wait)
        finally:
            # Also when cancelled while waiting: never return with the process alive.
            if process.poll() is None:
                process.kill()
                process.wait()
            _live.discard(process)
            self._process = None

    async def restart(self, timeout: float = 30) -> None:
        """Stop and start again: same port, same data directory."""
        await self.stop()
        await self.start(timeout)

    async def close(self) -> None:
        """Stop, and remove the temporary directory if we made it."""
        await self.stop()
        if self._own_workdir:
            await asyncio.to_thread(shutil.rmtree, self.workdir, True)
            _temp_dirs.discard(self.workdir)

    async def __aenter__(self) -> Self:
        try:
            await self.start()
        except BaseException:
            await asyncio.shield(self.close())
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.shield(self.close())

    def query_log(self) -> list[str]:
        """The ``params.query`` of each query-log entry, oldest first."""
        try:
            text = self.query_log_path.read_text()
        except FileNotFoundError:
            return []
        queries: list[str] = []
        for line in text.splitlines():
            if line.strip():
                entry = json.loads(line)
                queries.append(str(entry.get("params", {}).get("query", "")))
        return queries

    async def api(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        """GET ``/api/v1/<path>``; return ``data``, or raise PrometheusError with the error."""
        url = f"{self.url}/api/v1/{path}"
        async with (
            aiohttp.ClientSession() as session,
            session.get(url, params=params, timeout=aiohttp.ClientTimeout(total=10)) as response,
        ):
            text = await response.text()
        try:
            body = json.loads(text)
        except ValueError:
            raise PrometheusError(f"GET {url}: HTTP {response.status}: {text[:200]}") from None
        if body.get("status") != "success":
            raise PrometheusError(
                f"GET {url}: {body.get('errorType')}: {body.get('error')} (HTTP {response.status})"
            )
        return body.get("data")

    async def query(self, query: str, *, time: float | None = None) -> Any:
        """An instant query; returns ``data.result``."""
        params = {"query": query}
        if time is not None:
            params["time"] = _format_time(time)
        return (await self.api("query", params))["result"]

    async def series(self, match: str) -> list[dict[str, str]]:
        result = await self.api("series", {"match[]": match})
        return [dict(labels) for labels in result]

    async def wait_for_series(
        self, match: str, *, count: int = 1, timeout: float = 30
    ) -> list[dict[str, str]]:
        """Poll ``/api/v1/series`` until ``match`` selects at least ``count`` series."""
        last: object = "no attempt made"

        async def attempt() -> list[dict[str, str]] | None:
            nonlocal last
            found = await self.series(match)
            last = f"{len(found)} series"
            return found if len(found) >= count else None

        return await self._poll(attempt, timeout, lambda: f"{count} series for {match}: {last}")

    async def wait_for_query(
        self,
        query: str,
        predicate: Callable[[Any], bool],
        timeout: float = 30,
        *,
        time: float | None = None,
    ) -> Any:
        """Poll ``/api/v1/query`` until ``predicate(result)`` holds; return that result."""
        last: object = "no attempt made"

        async def attempt() -> Any:
            nonlocal last
            result = await self.query(query, time=time)
            last = result
            return result if predicate(result) else None

        return await self._poll(attempt, timeout, lambda: f"{query}: last result {last!r}")

    async def _poll(
        self,
        attempt: Callable[[], Awaitable[_T | None]],
        timeout: float,
        describe: Callable[[], str],
    ) -> _T:
        deadline = time.monotonic() + timeout
        error = ""
        while True:
            try:
                found = await attempt()
                error = ""
                if found is not None:
                    return found
            except (PrometheusError, aiohttp.ClientError, OSError, TimeoutError) as problem:
                error = f" ({type(problem).__name__}: {problem})"
            if time.monotonic() >= deadline:
                raise TimeoutError(f"after {timeout:g}s, waiting for {describe()}{error}")
            await asyncio.sleep(_POLL_INTERVAL)


def _promtool(prometheus_binary: str | None) -> str:
    if prometheus_binary is not None:
        beside = Path(prometheus_binary).with_name("promtool")
        if beside.exists():
            return str(beside)
    found = shutil.which("promtool")
    return found if found is not None else ensure_debian_package("promtool", "prometheus")


async def create_blocks(
    source: Path, output_dir: Path, *, timeout: float = 120, binary: str | None = None
) -> None:
    """``promtool tsdb create-blocks-from openmetrics source output_dir``, in ``timeout`` s.

    ``binary`` is the Prometheus binary whose promtool to prefer. promtool reads the file
    once per two-hour block, and needs about 1 minute and 4 GB for a million series.
    """
    if binary is None:
        binary = await asyncio.to_thread(ensure_prometheus)
    tool = await asyncio.to_thread(_promtool, binary)
    output_dir.mkdir(parents=True, exist_ok=True)
    process = await asyncio.create_subprocess_exec(
        *dying_with_parent(
            [
                tool,
                "tsdb",
                "create-blocks-from",
                "openmetrics",
                "--quiet",
                str(source),
                str(output_dir),
            ]
        ),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), timeout)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await asyncio.shield(process.wait())
        raise
    if process.returncode != 0:
        raise PrometheusError(f"promtool backfill failed:\n{output.decode(errors='replace')}")


def _link_blocks(source: Path, data_dir: Path) -> None:
    """Hard-link (copy across file systems) every block directory of ``source``."""

    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    data_dir.mkdir(parents=True, exist_ok=True)
    for block in sorted(source.iterdir()):
        if block.is_dir() and (block / "meta.json").exists():
            shutil.copytree(block, data_dir / block.name, copy_function=link)


def _format_time(value: float) -> str:
    # Prometheus parses "1700000000.123"; repr keeps every digit a float has.
    if math.isfinite(value) and value == int(value):
        return str(int(value))
    return repr(value)


async def _serve(args: argparse.Namespace) -> None:
    from harness.exporter import dataset_from_args  # noqa: PLC0415 (only the CLI needs it)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    prometheus = PrometheusProcess(
        args.target,
        port=args.port or None,
        route_prefix=args.route_prefix,
        workdir=Path(args.workdir) if args.workdir else None,
    )
    if args.backfill_minutes > 0 and args.target:
        # The exporter's data, as each target's scrapes will label it.
        dataset = dataset_from_args(args.pods, args.namespaces)
        now = int(time.time())
        prometheus.backfill = "".join(
            dataset.openmetrics_history(
                now - 60 * args.backfill_minutes,
                now - 1,
                extra_labels=prometheus.target_labels(target),
                eof=index == len(args.target) - 1,
            )
            for index, target in enumerate(args.target)
        )
    async with prometheus:
        print(f"prometheus: ready at {prometheus.url} (pid {prometheus.pid})", flush=True)
        await stop.wait()
    print("prometheus: stopped", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m harness.prometheus",
        description="Run a real Prometheus scraping the given targets until SIGTERM/SIGINT.",
    )
    parser.add_argument("--target", action="append", default=[], help="host:port to scrape")
    parser.add_argument("--port", type=int, default=0, help="port to serve on (0: any free)")
    parser.add_argument("--route-prefix", default=None, help="serve under this path, e.g. /prom")
    parser.add_argument("--workdir", default=None, help="keep config, data and logs here")
    parser.add_argument(
        "--backfill-minutes",
        type=int,
        default=0,
        help="load this much history of the exporter's data set, for each target, first",
    )
    parser.add_argument("--pods", type=int, default=None, help="as the exporter's --pods")
    parser.add_argument("--namespaces", type=int, default=10, help="as the exporter's")
    args = parser.parse_args(argv)
    try:
        asyncio.run(_serve(args))
    except (PrometheusError, TimeoutError, RuntimeError) as error:
        print(f"prometheus: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
