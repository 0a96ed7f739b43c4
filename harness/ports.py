"""Free TCP ports and readiness polling over HTTP."""

from __future__ import annotations

import asyncio
import socket
import ssl as ssl_module
import time
from collections.abc import Callable

import aiohttp

__all__ = ["free_port", "port_is_free", "wait_for_http"]

# How often readiness is polled: short, so that a test waits little past the event itself.
_POLL_INTERVAL = 0.05


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_free(port: int) -> bool:
    """Whether a TCP port on 127.0.0.1 can be bound right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _status_is_200(status: int) -> bool:
    return status == 200


async def wait_for_http(
    url: str,
    *,
    timeout: float,
    ok: Callable[[int], bool] = _status_is_200,
    ssl: ssl_module.SSLContext | bool | None = None,
) -> None:
    """Poll ``GET url`` until ``ok(status)`` holds; raise TimeoutError with the last error.

    ``ssl`` is passed to aiohttp (``False`` skips certificate checks, a context pins a CA).
    """
    deadline = time.monotonic() + timeout
    last = "no attempt made"
    # A fresh connector per attempt would be wasteful; but a pooled connection to a server
    # that is restarting could hide that it went away, so keep-alive is off.
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{url} not ready after {timeout:g}s: {last}")
            try:
                async with session.get(
                    url,
                    ssl=True if ssl is None else ssl,
                    timeout=aiohttp.ClientTimeout(total=max(remaining, 0.01)),
                    allow_redirects=False,
                ) as response:
                    await response.read()
                    if ok(response.status):
                        return
                    last = f"HTTP {response.status}"
            except (aiohttp.ClientError, OSError, TimeoutError) as error:
                last = f"{type(error).__name__}: {error}"
            await asyncio.sleep(min(_POLL_INTERVAL, max(deadline - time.monotonic(), 0)))
