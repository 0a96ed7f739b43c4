"""What the Prometheus and Kubernetes clients share: a pooled aiohttp session made on first
use (inside the running loop, not in a constructor that may run before it), closed once, and
the async context manager around it."""

from collections.abc import Callable
from types import TracebackType
from typing import Self

import aiohttp

__all__ = ["PooledClient"]


class PooledClient:
    """Base of a client owning one aiohttp session; `_new_session` says how to make it."""

    __slots__ = ("_closed", "_session")

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    _new_session: Callable[[], aiohttp.ClientSession]

    def _get_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError(f"{type(self).__name__} is closed")
        if self._session is None:
            self._session = self._new_session()
        return self._session

    async def close(self) -> None:
        """Close the connection pool; the client cannot be used afterwards."""
        self._closed = True
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
