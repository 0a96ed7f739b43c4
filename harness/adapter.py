"""Run the adapter as a real process (`python -m adapter`), as the demo and tests use it."""

import asyncio
import contextlib
import os
import signal
import ssl
import sys
import tempfile
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import aiohttp

from harness.ports import free_port
from harness.processes import dying_with_parent

__all__ = ["AdapterProcess", "running_adapter"]


class AdapterProcess:
    """`python -m adapter --no-cluster ...` on a free port, with its own cert dir and log."""

    def __init__(
        self,
        config: str | Path,
        prometheus_url: str,
        extra_args: Sequence[str] = (),
        *,
        workdir: Path | None = None,
        relist_interval: str = "1s",
        no_cluster: bool = True,
    ) -> None:
        self.config = Path(config)
        self.prometheus_url = prometheus_url
        self.extra_args = list(extra_args)
        self.relist_interval = relist_interval
        self.no_cluster = no_cluster
        self._tmp = None if workdir else tempfile.TemporaryDirectory(prefix="adapter-")
        self.workdir = workdir or Path(self._tmp.name)  # type: ignore[union-attr]
        self.port = free_port()
        self.log_path = self.workdir / "adapter.log"
        self.process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca_file(self) -> Path:
        """The generated self-signed certificate chain, to trust the server."""
        return self.workdir / "certs" / "apiserver.crt"

    def command(self) -> list[str]:
        mode = ["--no-cluster"] if self.no_cluster else ["--bind-address=127.0.0.1"]
        return [
            sys.executable, "-m", "adapter", *mode,
            f"--config={self.config}",
            f"--prometheus-url={self.prometheus_url}",
            f"--secure-port={self.port}",
            f"--cert-dir={self.workdir / 'certs'}",
            f"--metrics-relist-interval={self.relist_interval}",
            # A look-back as short as a 1 s relist would miss series scraped a moment ago.
            "--metrics-max-age=5m",
            "--v=6",
            *self.extra_args,
        ]  # fmt: skip

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    async def start(self, *, wait_ready: bool = True, timeout: float = 30) -> None:
        with self.log_path.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                *dying_with_parent(self.command()),
                stdout=log,
                stderr=log,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        await self.wait_for("/readyz" if wait_ready else "/livez", timeout=timeout)

    async def wait_for(self, path: str, *, timeout: float = 30) -> None:
        """Poll `path` until it answers 200; fail with the adapter's log."""
        deadline = asyncio.get_running_loop().time() + timeout
        last = "no answer"
        async with aiohttp.ClientSession() as session:
            while asyncio.get_running_loop().time() < deadline:
                if self.process is not None and self.process.returncode is not None:
                    raise RuntimeError(
                        f"adapter exited with {self.process.returncode}:\n{self.log()}"
                    )
                try:
                    ssl_ctx = self.ssl_context() if self.ca_file.exists() else False
                    async with session.get(self.url + path, ssl=ssl_ctx) as response:
                        if response.status == 200:
                            return
                        last = f"{response.status} {await response.text()}"
                except (aiohttp.ClientError, OSError) as exc:
                    last = repr(exc)
                await asyncio.sleep(0.05)
        raise TimeoutError(f"adapter {path} not ready after {timeout}s ({last}):\n{self.log()}")

    async def stop(self, timeout: float = 10) -> int | None:
        """SIGTERM, then SIGKILL after `timeout`; returns the exit code."""
        process, self.process = self.process, None
        if process is None or process.returncode is not None:
            return None if process is None else process.returncode
        process.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(process.wait(), timeout)
        except TimeoutError:
            process.kill()
            return await process.wait()

    async def close(self) -> None:
        await self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()


@contextlib.asynccontextmanager
async def running_adapter(
    config: str | Path,
    prometheus_url: str,
    extra_args: Sequence[str] = (),
    *,
    wait_ready: bool = True,
    no_cluster: bool = True,
) -> AsyncIterator[AdapterProcess]:
    adapter = AdapterProcess(config, prometheus_url, extra_args, no_cluster=no_cluster)
    try:
        await adapter.start(wait_ready=wait_ready)
        yield adapter
    finally:
        await adapter.close()
