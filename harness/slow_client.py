"""Clients that misbehave on purpose, for the hostile tests: connections that stay silent, send
half a request, or pile up; and the server's memory as /proc sees it."""

import asyncio
import contextlib
import resource
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "Connection",
    "RawResponse",
    "close_all",
    "parse_response",
    "raise_open_files_limit",
    "read_response",
    "read_until_closed",
    "rss_mb",
    "send_raw",
    "silent_connections",
]


@dataclass
class Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    opened: float  # time.monotonic() when the connection (and its TLS handshake) completed

    def close(self) -> None:
        self.writer.transport.abort()


async def silent_connections(
    host: str,
    port: int,
    count: int,
    *,
    tls: ssl.SSLContext | None = None,
    first_bytes: bytes = b"",
    concurrency: int = 64,
) -> list[Connection]:
    """`count` connections that send `first_bytes` (or nothing) and then nothing more. With
    `tls`, each completes its handshake first; without, none sends a ClientHello. Opened
    `concurrency` at a time, so the listen backlog never overflows (a dropped SYN is retried
    only a second later)."""
    gate = asyncio.Semaphore(concurrency)

    async def one() -> Connection:
        async with gate:
            reader, writer = await asyncio.open_connection(host, port, ssl=tls)
            if first_bytes:
                writer.write(first_bytes)
                await writer.drain()
            return Connection(reader, writer, time.monotonic())

    return list(await asyncio.gather(*(one() for _ in range(count))))


async def read_until_closed(reader: asyncio.StreamReader, timeout: float) -> bytes:
    """Everything the server sends until it closes the connection (a reset counts as closed);
    TimeoutError if it is still open after `timeout` seconds."""
    chunks: list[bytes] = []

    async def read() -> None:
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            while chunk := await reader.read(65536):
                chunks.append(chunk)

    await asyncio.wait_for(read(), timeout)
    return b"".join(chunks)


@dataclass
class RawResponse:
    status_line: str
    headers: dict[str, str]  # names lower-cased; the last of repeated ones
    body: bytes

    @property
    def code(self) -> int:
        return int(self.status_line.split(" ", 2)[1])


def parse_response(data: bytes) -> RawResponse:
    """One HTTP/1.x response with a Content-Length, as bytes read off the wire."""
    head, _, rest = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return RawResponse(status_line, headers, rest[: int(headers.get("content-length", len(rest)))])


async def read_response(reader: asyncio.StreamReader) -> RawResponse:
    """The next response on a kept-alive connection (one with a Content-Length)."""
    head = await reader.readuntil(b"\r\n\r\n")
    response = parse_response(head)
    length = int(response.headers.get("content-length", "0"))
    response.body = await reader.readexactly(length)
    return response


async def send_raw(
    host: str, port: int, data: bytes, *, tls: ssl.SSLContext | None, timeout: float = 10
) -> bytes:
    """Send `data` as it is and return all the server answers before it closes. Reads while
    writing, so that an answer to a head cut short is not lost to a reset."""
    reader, writer = await asyncio.open_connection(host, port, ssl=tls)
    try:
        answer = asyncio.ensure_future(read_until_closed(reader, timeout))
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            writer.write(data)
            await writer.drain()
        return await answer
    finally:
        writer.transport.abort()


def rss_mb(pid: int) -> float:
    """The resident set size of process `pid`, in MB (VmRSS)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def raise_open_files_limit(wanted: int) -> int:
    """Raise this process's soft open-files limit towards `wanted` (children inherit it);
    returns the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    return soft


def close_all(connections: Sequence[Connection]) -> None:
    for connection in connections:
        connection.close()
